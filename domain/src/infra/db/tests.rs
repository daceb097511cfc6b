//! Rollback: every migration's `down` undoes exactly what its `up` did, on PostgreSQL and SQLite,
//! with data in the tables. Written over `Migrator::migrations()`, so new migrations are covered
//! without touching this test.

use chrono::{Duration, Utc};
use entity::{
    handoff_code, job_lease, job_request, membership_check, oauth_state, session, sweep,
    sweep_item, user, webhook_event,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, Statement,
};
use test_support::{Backend, TestDb, postgres_enabled};

use super::{SchemaState, schema_state};

/// The schema as sorted lines: columns (type, nullability, default), indexes and constraints.
async fn schema(db: &DatabaseConnection) -> Vec<String> {
    let queries: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
             || ' ' || coalesce(column_default, '') AS s \
             FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT indexdef AS s FROM pg_indexes WHERE schemaname = 'public'",
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS s \
             FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
        ],
        _ => &[
            "SELECT m.name || '.' || p.name || ' ' || p.type || ' ' || p.\"notnull\" || ' ' \
             || coalesce(p.dflt_value, '') || ' ' || p.pk AS s \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
            "SELECT coalesce(sql, name) AS s FROM sqlite_master \
             WHERE type = 'index' AND name NOT LIKE 'sqlite_%'",
            "SELECT m.name || ' -> ' || f.\"table\" || '.' || f.\"to\" || ' ' || f.on_delete AS s \
             FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f WHERE m.type = 'table'",
        ],
    };
    let mut lines = Vec::new();
    for sql in queries {
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), *sql))
            .await
            .unwrap();
        for row in rows {
            let line: String = row.try_get("", "s").unwrap();
            // The migration bookkeeping table is not part of the schema under test.
            if !line.contains("seaql_migrations") {
                lines.push(line);
            }
        }
    }
    lines.sort();
    lines
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

async fn table_exists(db: &DatabaseConnection, table: &str) -> bool {
    schema(db)
        .await
        .iter()
        .any(|line| line.starts_with(&format!("{table}.")))
}

/// One row in every table, linked the way real use links them.
async fn fill_every_table(db: &DatabaseConnection) {
    let now = Utc::now();
    let member = user::Entity::insert(user::ActiveModel {
        patreon_id: Set("4242".into()),
        email: Set(Some("ada@example.com".into())),
        entitled_amount_cents: Set(500),
        membership_active: Set(true),
        last_checked: Set(Some(now)),
        access_token: Set(Some("v1:k1:nonce:ciphertext".into())),
        token_version: Set(1),
        needs_relogin: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
    .unwrap();
    session::Entity::insert(session::ActiveModel {
        id: Set("session-1".into()),
        user_id: Set(member.id),
        created_at: Set(now),
        expires_at: Set(now + Duration::days(7)),
        refresh_token_hash: Set("hash".into()),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    handoff_code::Entity::insert(handoff_code::ActiveModel {
        code_hash: Set("code".into()),
        session_id: Set("session-1".into()),
        expires_at: Set(now + Duration::minutes(1)),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    oauth_state::Entity::insert(oauth_state::ActiveModel {
        state_hash: Set("state".into()),
        return_to: Set("/".into()),
        created_at: Set(now),
        expires_at: Set(now + Duration::minutes(10)),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    membership_check::Entity::insert(membership_check::ActiveModel {
        user_id: Set(member.id),
        checked_at: Set(now),
        trigger: Set("login".into()),
        outcome: Set("verified".into()),
        new_active: Set(Some(true)),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    job_request::Entity::insert(job_request::ActiveModel {
        id: Set("job-1".into()),
        kind: Set("verify_membership".into()),
        user_id: Set(member.id),
        trigger: Set("member".into()),
        status: Set("queued".into()),
        attempts: Set(0),
        created_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    let sweep = sweep::Entity::insert(sweep::ActiveModel {
        tick: Set("2026-12-01T00:00:00Z".into()),
        trigger: Set("schedule".into()),
        started_at: Set(now),
        total: Set(1),
        ..Default::default()
    })
    .exec_with_returning(db)
    .await
    .unwrap();
    sweep_item::Entity::insert(sweep_item::ActiveModel {
        sweep_id: Set(sweep.id),
        user_id: Set(member.id),
        status: Set("pending".into()),
        attempts: Set(0),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    job_lease::Entity::insert(job_lease::ActiveModel {
        key: Set(format!("verify:{}", member.id)),
        holder: Set("worker-1".into()),
        expires_at: Set(now + Duration::seconds(30)),
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    webhook_event::Entity::insert(webhook_event::ActiveModel {
        trigger: Set("members:pledge:delete".into()),
        patreon_user_id: Set(Some("4242".into())),
        body: Set("{}".into()),
        body_sha256: Set("44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a".into()),
        status: Set("pending".into()),
        received_at: Set(now),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await
    .unwrap();
    // The Patreon budget's tables have no entities: the budget writes them with plain SQL.
    for insert in [
        "INSERT INTO patreon_budget_calls (budget_key, at_ms) VALUES ('client', 1)",
        "INSERT INTO patreon_budget_pauses (budget_key, until_ms) VALUES ('client', 1)",
    ] {
        db.execute_unprepared(insert).await.unwrap();
    }
}

async fn every_migration_rolls_back_to_zero_and_up_again(backend: Backend) {
    let test_db = TestDb::create(backend).await;
    // One connection: every step sees the schema the previous one left (a second pooled SQLite
    // connection could still hold statements prepared against an older schema).
    let db = crate::infra::db::connect(&test_db.url, 1).await.unwrap();
    let steps = Migrator::migrations().len();

    // Up one step at a time, remembering the schema at each level.
    let mut levels = vec![schema(&db).await];
    for _ in 0..steps {
        Migrator::up(&db, Some(1)).await.unwrap();
        levels.push(schema(&db).await);
    }
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(schema_state(&db).await.unwrap(), SchemaState::Current);
    fill_every_table(&db).await;

    // Down one step at a time: each level's schema is exactly what it was on the way up, and the
    // member's row survives every step that keeps the users table.
    for level in (0..steps).rev() {
        Migrator::down(&db, Some(1))
            .await
            .unwrap_or_else(|e| panic!("down from level {} failed: {e}", level + 1));
        let now = schema(&db).await;
        let left_over: Vec<_> = now.iter().filter(|l| !levels[level].contains(l)).collect();
        let lost: Vec<_> = levels[level].iter().filter(|l| !now.contains(l)).collect();
        assert!(
            left_over.is_empty() && lost.is_empty(),
            "rolling back to level {level}: left over {left_over:?}, lost {lost:?}"
        );
        if table_exists(&db, "users").await {
            assert_eq!(count(&db, "users").await, 1, "level {level} lost the data");
        }
        let SchemaState::Behind(pending) = schema_state(&db).await.unwrap() else {
            panic!("level {level} is behind")
        };
        assert_eq!(pending.len(), steps - level);
    }
    assert!(schema(&db).await.is_empty(), "tables are left at zero");

    // And up again, with data, to the same schema.
    crate::infra::db::migrate(&db).await.unwrap();
    assert_eq!(schema(&db).await, levels[steps]);
    fill_every_table(&db).await;
    assert_eq!(count(&db, "users").await, 1);
}

#[tokio::test]
async fn sqlite_migrations_roll_back_to_zero_and_up_again_with_data() {
    every_migration_rolls_back_to_zero_and_up_again(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test]
async fn postgres_migrations_roll_back_to_zero_and_up_again_with_data() {
    if postgres_enabled() {
        every_migration_rolls_back_to_zero_and_up_again(Backend::Postgres).await;
    }
}

/// A database a newer release migrated (a staged upgrade, or binaries rolled back before the
/// schema) is reported as ahead, naming what this build does not know.
#[tokio::test]
async fn a_migration_this_build_does_not_know_makes_the_schema_ahead() {
    let test_db = TestDb::create(Backend::Sqlite).await;
    let db = crate::infra::db::connect(&test_db.url, 1).await.unwrap();
    crate::infra::db::migrate(&db).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) \
         VALUES ('m20990101_000001_from_the_future', 0)",
    )
    .await
    .unwrap();
    assert_eq!(
        schema_state(&db).await.unwrap(),
        SchemaState::Ahead(vec!["m20990101_000001_from_the_future".to_owned()])
    );
}
