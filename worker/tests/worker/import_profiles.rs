//! `worker import-profiles`: the old app's `user_profiles` into `users`, idempotently, with
//! malformed rows reported and imported paid access bounded by `STALE_AFTER_DAYS`.

use domain::{
    members::listing::{self, MemberQuery, StatusFilter, is_paid_member},
    members::membership_checks::CheckTrigger,
    members::profile_import::{self, ProfileColumns, ProfileSource, SkipReason},
    members::users::find_by_patreon_id,
    members::verification::Verification,
};
use entity::user;
use patreon_mock::{MockMembership, MockTier, MockUser};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, EntityTrait, PaginatorTrait, QueryOrder,
};
use test_support::{Backend, TestDb, postgres_enabled};
use worker::cli::{Cli, Command, OneOffCommand};

use crate::helpers::*;

/// The old app's table as the plan's `UserProfile` has it (`is_paid_member`, `is_team_member`):
/// text ids (so malformed ones can exist), the seven imported fields and columns the import
/// ignores.
const CREATE_SOURCE: &str = "CREATE TABLE user_profiles (
    id text, email text, name text, avatar_url text, membership_tier text,
    is_paid_member boolean, is_team_member boolean, password_hash text,
    created_at timestamp DEFAULT now())";

/// 9,950 good rows (ids 1..=9950: even ids paid, every 100th on the team, every third without
/// a tier) and 50 malformed ones of six kinds.
const FILL_SOURCE: &str = "
INSERT INTO user_profiles (id, email, name, avatar_url, membership_tier, is_paid_member, is_team_member, password_hash)
SELECT n::text, 'member' || n || '@example.com', 'Member ' || n,
       'https://c8.patreon.com/' || n || '.png',
       CASE WHEN n % 3 = 0 THEN NULL ELSE 'Gold' END, n % 2 = 0, n % 100 = 0, 'pbkdf2:secret'
FROM generate_series(1, 9950) AS n;
INSERT INTO user_profiles (id, email, is_paid_member) SELECT NULL, 'x' || n || '@example.com', true FROM generate_series(1, 5) AS n;
INSERT INTO user_profiles (id, email, is_paid_member) SELECT '', 'y' || n || '@example.com', true FROM generate_series(1, 5) AS n;
INSERT INTO user_profiles (id, is_paid_member) SELECT 'abc' || n, true FROM generate_series(1, 10) AS n;
INSERT INTO user_profiles (id, email, is_paid_member) SELECT (20000 + n)::text, 'not-an-email', true FROM generate_series(1, 10) AS n;
INSERT INTO user_profiles (id, name, is_paid_member) SELECT (20010 + n)::text, repeat('x', 300), true FROM generate_series(1, 5) AS n;
INSERT INTO user_profiles (id, avatar_url, is_paid_member) SELECT (20015 + n)::text, 'javascript:alert(1)', true FROM generate_series(1, 5) AS n;
INSERT INTO user_profiles (id, email, is_paid_member) SELECT (30000 + n % 5)::text, 'dup' || n || '@example.com', true FROM generate_series(0, 9) AS n;
";

async fn source_db(fill: &str) -> (TestDb, DatabaseConnection) {
    let source = TestDb::create(Backend::Postgres).await;
    let db = Database::connect(&source.url).await.unwrap();
    db.execute_unprepared(CREATE_SOURCE).await.unwrap();
    db.execute_unprepared(fill).await.unwrap();
    (source, db)
}

/// Runs the command as the CLI does; its report, or its error.
async fn import(w: &World, source: &TestDb, extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["import-profiles", "--from", &source.url];
    args.extend(extra);
    let Ok(Command::OneOff(OneOffCommand::ImportProfiles(args))) = Cli::command_from(&args) else {
        panic!("not an import: {args:?}")
    };
    let mut out = Vec::new();
    worker::import_command::run(&w.ctx.db, args, &mut out)
        .await
        .map_err(|e| format!("{e:#}"))?;
    Ok(String::from_utf8(out).unwrap())
}

async fn all_users(w: &World) -> Vec<user::Model> {
    user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(&w.ctx.db)
        .await
        .unwrap()
}

/// How many members the admin listing counts as paying at `at` (the SQL form of the rule).
async fn paying_at(w: &World, at: chrono::DateTime<chrono::Utc>) -> u64 {
    let query = MemberQuery {
        status: Some(StatusFilter::Paying),
        limit: 1,
        ..MemberQuery::default()
    };
    let (total, _) = listing::list(&w.ctx.db, &query, w.ctx.settings.stale_after, at)
        .await
        .unwrap();
    total
}

async fn member(w: &World, patreon_id: &str) -> user::Model {
    find_by_patreon_id(&w.ctx.db, &patreon_id.into())
        .await
        .unwrap()
        .unwrap()
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_profiles_import_once_with_malformed_rows_reported() {
    if !postgres_enabled() {
        return;
    }
    let w = World::new(Backend::Postgres).await;
    let (source, source_conn) = source_db(FILL_SOURCE).await;
    // Member 42 signed in already: Patreon says they left, the old app says they pay.
    let verified = w.signed_in(MockUser::former_patron("42", CAMPAIGN)).await;
    let stale_after = w.ctx.settings.stale_after;

    let dry = import(&w, &source, &["--dry-run"]).await.unwrap();
    assert!(
        dry.contains("(dry run: nothing written): 10000 rows read"),
        "{dry}"
    );
    assert!(dry.contains("created    9959"), "{dry}");
    assert_eq!(all_users(&w).await.len(), 1, "a dry run writes nothing");

    let first = import(&w, &source, &[]).await.unwrap();
    for line in [
        "10000 rows read",
        "columns    id=id email=email name=name avatar=avatar_url tier=membership_tier \
         paid=is_paid_member team=is_team_member",
        "created    9959",
        "updated    0",
        "unchanged  0",
        "skipped    41",
        "already verified by Patreon: 1",
        "missing id: 10",
        "id is not a Patreon user id (digits, no leading zero): 10",
        "imported without their email  10\n    invalid email: 10",
        "row \"20001\": invalid email (imported without it)",
        "name longer than 255 characters: 5",
        "avatar is not an http(s) URL: 5",
        "duplicate id (every row with it skipped): 10",
        "row \"abc7\": id is not a Patreon user id",
        "row \"30003\": duplicate id",
        "row (no id): missing id",
    ] {
        assert!(first.contains(line), "{line:?} missing from:\n{first}");
    }
    let users = all_users(&w).await;
    assert_eq!(users.len(), 9960, "9,959 imported and the signed-in member");
    for id in ["abc1", "20011", "20016", "30000"] {
        assert!(
            find_by_patreon_id(&w.ctx.db, &id.into())
                .await
                .unwrap()
                .is_none(),
            "{id} imported"
        );
    }
    assert!(!first.contains("@example.com"), "no emails in the report");
    let without_email = member(&w, "20001").await;
    assert_eq!(
        without_email.email, None,
        "imported without the malformed email"
    );
    assert!(without_email.membership_active && without_email.imported_at.is_some());

    // Imported paid members pay until their import goes stale; they are unverified meanwhile.
    let now = chrono::Utc::now();
    let paid = member(&w, "2").await;
    assert!(paid.last_checked.is_none() && paid.access_token.is_none());
    assert_eq!(paid.email.as_deref(), Some("member2@example.com"));
    assert_eq!(paid.tier_title.as_deref(), Some("Gold"));
    assert!(is_paid_member(&paid, stale_after, now));
    let later = now + stale_after + chrono::Duration::days(1);
    assert!(!is_paid_member(&paid, stale_after, later));
    assert!(!is_paid_member(&member(&w, "1").await, stale_after, now));
    // Even ids 2..=9950 pay, but 42 answers to Patreon; so do the ten without an email.
    assert_eq!(paying_at(&w, now).await, 4984);
    assert_eq!(paying_at(&w, later).await, 0);
    assert!(member(&w, "100").await.imported_team);
    assert!(member(&w, "300").await.tier_title.is_none());

    // The member Patreon vouched for keeps Patreon's word.
    let kept = member(&w, "42").await;
    assert_eq!(kept.id, verified);
    assert!(!kept.membership_active && kept.imported_at.is_none());
    assert_ne!(kept.email.as_deref(), Some("member42@example.com"));

    // A check of an imported member (no Patreon token, no creator token) asks for a sign-in
    // and keeps the imported status until it goes stale.
    let checked = w
        .ctx
        .verifier()
        .verify(&w.ctx.db, paid.id, CheckTrigger::Sweep)
        .await
        .unwrap();
    assert_eq!(checked, Verification::NeedsRelogin);
    assert!(is_paid_member(
        &member(&w, "2").await,
        stale_after,
        chrono::Utc::now()
    ));

    let before = all_users(&w).await;
    let second = import(&w, &source, &[]).await.unwrap();
    assert!(second.contains("created    0"), "{second}");
    assert!(second.contains("updated    0"), "{second}");
    assert!(second.contains("unchanged  9959"), "{second}");
    assert_eq!(all_users(&w).await, before, "a second run changes nothing");

    // A changed source row updates its member without extending their access.
    source_conn
        .execute_unprepared(
            "UPDATE user_profiles SET is_paid_member = false, name = 'Renamed' WHERE id = '2'",
        )
        .await
        .unwrap();
    let third = import(&w, &source, &[]).await.unwrap();
    assert!(third.contains("updated    1"), "{third}");
    let renamed = member(&w, "2").await;
    assert_eq!(renamed.full_name.as_deref(), Some("Renamed"));
    assert!(!renamed.membership_active);
    assert_eq!(renamed.imported_at, paid.imported_at);
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_table_or_column_names_fail_before_anything_is_written() {
    if !postgres_enabled() {
        return;
    }
    let w = World::new(Backend::Postgres).await;
    let (source, _conn) = source_db(
        "INSERT INTO user_profiles (id, is_paid_member) VALUES ('1', true);
             CREATE TABLE bare (id text, email text, name text, avatar_url text,
                 membership_tier text, paid boolean)",
    )
    .await;
    for (args, expected) in [
        (vec!["--table", "profiles"], "no table \"profiles\""),
        (
            vec!["--table", "user_profiles; DROP TABLE users"],
            "--table \"user_profiles; DROP TABLE users\" is not a plain SQL identifier",
        ),
        (
            vec!["--tier-column", "tier"],
            "no column tier (--tier-column)",
        ),
        (
            vec!["--email-column", "e\"mail"],
            "is not a plain SQL identifier",
        ),
        (
            vec!["--table", "bare"],
            "no column is_paid_member or is_paid (--paid-column), \
             is_team_member or is_team (--team-column)",
        ),
        (
            vec!["--table", "bare", "--paid-column", "is_paid"],
            "no column is_paid (--paid-column)",
        ),
    ] {
        let err = import(&w, &source, &args).await.unwrap_err();
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let err = import(&w, &source, &["--paid-column", "email"])
        .await
        .unwrap_err();
    assert!(
        err.contains("column \"email\" (--paid-column) is text, not boolean"),
        "{err}"
    );
    assert_eq!(user::Entity::find().count(&w.ctx.db).await.unwrap(), 0);
}

/// Integer ids with duplicates, read three rows at a time: a run of equal ids cut by the
/// limit is still seen whole, and the import lands on SQLite, the embedded default.
#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integer_ids_page_whole_runs_of_duplicates_into_sqlite_and_a_sweep_settles_them() {
    if !postgres_enabled() {
        return;
    }
    let w = World::new(Backend::Sqlite).await;
    let source = TestDb::create(Backend::Postgres).await;
    let conn = Database::connect(&source.url).await.unwrap();
    conn.execute_unprepared(
        "CREATE TABLE profiles (uid bigint, mail text, name text, avatar_url text,
             membership_tier text, paid boolean, is_team boolean);
         INSERT INTO profiles (uid, mail, paid) SELECT n, 'm' || n || '@example.com', true
             FROM generate_series(1, 7) AS n;
         INSERT INTO profiles (uid, mail, paid) VALUES (3, 'other@example.com', false),
             (3, 'third@example.com', true), (NULL, 'none@example.com', true);",
    )
    .await
    .unwrap();
    let columns = ProfileColumns {
        id: "uid".into(),
        email: "mail".into(),
        paid: Some("paid".into()),
        ..ProfileColumns::default()
    };
    for _ in 0..2 {
        let mut source = ProfileSource::open(&conn, "profiles", columns.clone())
            .await
            .unwrap();
        let mut seen = Vec::new();
        let report = profile_import::import_profiles(
            &mut source,
            &w.ctx.db,
            false,
            3,
            chrono::Utc::now(),
            |n| seen.push(n),
        )
        .await
        .unwrap();
        assert_eq!(report.rows_read, 10);
        let used = |field: &str| {
            report
                .columns
                .iter()
                .find(|(f, _)| *f == field)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(
            (used("paid"), used("team")),
            ("paid".into(), "is_team".into())
        );
        assert_eq!(report.skipped_for(SkipReason::DuplicateId), 3);
        assert_eq!(report.skipped_for(SkipReason::MissingId), 1);
        assert_eq!(report.created + report.unchanged, 6);
        assert_eq!(seen.last(), Some(&10), "progress reaches every row");
    }
    assert_eq!(user::Entity::find().count(&w.ctx.db).await.unwrap(), 6);

    // A sweep over imported members finishes: each needs a sign-in and keeps its status.
    let (_, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!((p.total, p.skipped, p.failed), (6, 6, 0));
    let now = chrono::Utc::now();
    assert!(is_paid_member(
        &member(&w, "7").await,
        w.ctx.settings.stale_after,
        now
    ));
    assert_eq!(paying_at(&w, now).await, 6);
    let later = now + w.ctx.settings.stale_after + chrono::Duration::days(1);
    assert_eq!(paying_at(&w, later).await, 0);
}

/// An imported paid flag is not an outcome of Patreon's rule: at the member's first sign-in it
/// gives no billing-time grace. The source here is a SQLite file, as a Flask app's may be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_paid_flag_gives_no_grace_at_the_first_sign_in() {
    let w = World::new(Backend::Sqlite).await;
    let source = TestDb::create(Backend::Sqlite).await;
    let conn = Database::connect(&source.url).await.unwrap();
    conn.execute_unprepared(
        "CREATE TABLE user_profiles (id INTEGER PRIMARY KEY, email TEXT, name TEXT,
             avatar_url TEXT, membership_tier TEXT, is_paid BOOLEAN, is_team BOOLEAN)",
    )
    .await
    .unwrap();
    conn.execute_unprepared(
        "INSERT INTO user_profiles VALUES (77, 'ann@example.com', 'Ann', NULL, 'Gold', 1, 0)",
    )
    .await
    .unwrap();
    let report = import(&w, &source, &[]).await.unwrap();
    assert!(report.contains("created    1"), "{report}");
    assert!(report.contains("paid=is_paid team=is_team"), "{report}");
    let now = chrono::Utc::now();
    assert!(is_paid_member(
        &member(&w, "77").await,
        w.ctx.settings.stale_after,
        now
    ));

    // At Patreon, Ann is active but her entitlement dropped at yesterday's billing: only a
    // member the rule granted before keeps access through that.
    let iso = |days: i64| {
        (now - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    };
    let mut membership = MockMembership::active("77", CAMPAIGN, MockTier::supporter());
    membership.tiers.clear();
    membership.currently_entitled_amount_cents = 0;
    membership.last_charge_status = Some("Pending".into());
    membership.last_charge_date = Some(iso(31));
    membership.next_charge_date = Some(iso(1));
    w.signed_in(MockUser::new("77", "Ann").with_membership(membership))
        .await;
    let ann = member(&w, "77").await;
    assert!(ann.last_checked.is_some());
    assert!(!ann.membership_active, "no grace from an imported flag");
}
