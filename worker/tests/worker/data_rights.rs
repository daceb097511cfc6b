//! `worker members export|erase`, and jobs still queued for a member who was erased.

use apalis::prelude::Data;
use domain::{members::membership_checks::CheckTrigger, work::jobs::Job, work::ledger::requests};
use entity::{job_lease, job_request, membership_check, session, user};
use patreon_mock::MockUser;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::Value;
use test_support::{Backend, postgres_enabled};
use worker::cli::{Cli, Command, OneOffCommand};
use worker::data_rights_commands::run;

use crate::helpers::*;

/// Runs `worker members <args>`; returns what it printed and whether it succeeded.
async fn members(w: &World, args: &[&str]) -> (String, anyhow::Result<()>) {
    let mut out = Vec::new();
    let result = match Cli::command_from(["members"].iter().chain(args)) {
        Ok(Command::OneOff(OneOffCommand::Members(command))) => {
            run(&w.ctx.db, command, &mut out).await
        }
        Ok(other) => panic!("{args:?} is not a members command: {other:?}"),
        Err(usage) => Err(usage.into()),
    };
    (String::from_utf8(out).unwrap(), result)
}

/// Rows in the tables a member's data lives in, whoever they are about.
async fn counts(w: &World) -> [u64; 4] {
    let db = &w.ctx.db;
    [
        user::Entity::find().count(db).await.unwrap(),
        session::Entity::find().count(db).await.unwrap(),
        membership_check::Entity::find().count(db).await.unwrap(),
        job_request::Entity::find().count(db).await.unwrap(),
    ]
}

async fn user_exists(w: &World, patreon_id: &str) -> bool {
    domain::members::users::find_by_patreon_id(&w.ctx.db, &patreon_id.into())
        .await
        .unwrap()
        .is_some()
}

async fn the_commands_export_and_erase_a_member(backend: Backend) {
    let w = World::new(backend).await;
    let member = w.signed_in(MockUser::active_patron("7701", CAMPAIGN)).await;
    w.signed_in(MockUser::active_patron("7702", CAMPAIGN)).await;
    w.member_recheck(member).await;

    let (printed, result) = members(&w, &["export", "7701"]).await;
    result.unwrap();
    let export: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(export["member"]["patreon_id"], "7701");
    assert_eq!(export["rechecks"].as_array().unwrap().len(), 1);
    assert!(
        !printed.contains("v1:k1:"),
        "no token ciphertext in the export"
    );

    let file = std::env::temp_dir().join(format!(
        "member-{}.json",
        domain::infra::secrets::random_id()
    ));
    let path = file.to_str().unwrap();
    let (printed, result) = members(&w, &["export", "7701", "--out", path]).await;
    result.unwrap();
    assert!(printed.contains(path), "{printed}");
    let written: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(written["member"]["patreon_id"], "7701");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by the operator only");
    }
    std::fs::remove_file(&file).unwrap();

    // Without --yes: what would go, and nothing goes.
    let before = counts(&w).await;
    let (printed, result) = members(&w, &["erase", "7701"]).await;
    let refusal = result.unwrap_err().to_string();
    assert!(refusal.contains("--yes"), "{refusal}");
    assert!(printed.contains("would delete"), "{printed}");
    assert!(
        printed.contains("users: 1") && printed.contains("job_requests: 1"),
        "{printed}"
    );
    assert_eq!(counts(&w).await, before, "nothing changed");

    let (printed, result) = members(&w, &["erase", "7701", "--yes"]).await;
    result.unwrap();
    assert!(printed.contains("erased member 7701"), "{printed}");
    assert!(!user_exists(&w, "7701").await);
    assert!(user_exists(&w, "7702").await, "the other member stays");
    let left = membership_check::Entity::find()
        .filter(membership_check::Column::UserId.eq(member))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(left, 0);

    let (_, again) = members(&w, &["erase", "7701", "--yes"]).await;
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("no member with Patreon id 7701")
    );
    let (_, bad) = members(&w, &["erase"]).await;
    let usage = bad.unwrap_err().to_string();
    assert!(
        usage.contains("required arguments were not provided")
            && usage.contains("Usage: worker members erase"),
        "{usage}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_export_and_erase_a_member_on_sqlite() {
    the_commands_export_and_erase_a_member(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_export_and_erase_a_member_on_postgres() {
    if postgres_enabled() {
        the_commands_export_and_erase_a_member(Backend::Postgres).await;
    }
}

async fn jobs_queued_for_an_erased_member_finish_as_no_ops(backend: Backend) {
    let w = World::new(backend).await;
    let member = w.signed_in(MockUser::active_patron("7711", CAMPAIGN)).await;
    let request = w.member_recheck(member).await;
    domain::members::data_rights::erase(&w.ctx.db, member)
        .await
        .unwrap();
    w.mock.reset_stats();

    let ctx = Data::new(w.ctx.clone());
    let queued = [
        requests::job_for(&request),
        Job::VerifyMembership {
            user_id: member,
            trigger: CheckTrigger::Webhook,
            request_id: None,
            sweep_id: None,
        },
        Job::RefreshToken {
            user_id: member,
            attempt: 0,
        },
    ];
    for job in queued {
        let kind = job.kind();
        worker::jobs::handle(job, ctx.clone())
            .await
            .unwrap_or_else(|e| panic!("{kind} failed for an erased member: {e}"));
    }
    assert!(!user_exists(&w, "7711").await, "nobody recreated");
    assert_eq!(counts(&w).await, [0, 0, 0, 0]);
    let leases = job_lease::Entity::find().count(&w.ctx.db).await.unwrap();
    assert_eq!(leases, 0, "no lease left behind");
    assert_eq!(w.mock.stats().identity_calls, 0, "Patreon was not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queued_for_an_erased_member_finish_as_no_ops_on_sqlite() {
    jobs_queued_for_an_erased_member_finish_as_no_ops(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_queued_for_an_erased_member_finish_as_no_ops_on_postgres() {
    if postgres_enabled() {
        jobs_queued_for_an_erased_member_finish_as_no_ops(Backend::Postgres).await;
    }
}
