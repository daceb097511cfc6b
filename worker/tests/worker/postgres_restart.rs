//! Failure injection: the database crashes in the middle of a sweep and comes back. The worker
//! process lives through it, and the sweep still checks every member exactly once.

use std::collections::HashMap;
use std::time::Duration;

use domain::work::sweeps::{self, Progress};
use entity::{membership_check, user};
use patreon_mock::Faults;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use test_support::{Backend, OwnPostgres};

use crate::failures::{
    Reaped, assert_nothing_lost, free_port, members, start_sweep, wait_until, worker_process,
};
use crate::helpers::*;

const MEMBERS: u64 = 60;

/// How long the database stays down after its crash, before crash recovery adds a few seconds
/// more: longer than `JOB_LOST_AFTER_SECS`, so the reconciler's re-pushes meet it gone too.
/// The crash is `pg_ctl stop -m immediate` rather than a fast restart: connections die
/// mid-statement, answers to committed statements are lost, and nothing says goodbye.
const DOWN_FOR: Duration = Duration::from_secs(2);

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_crash_mid_sweep_is_survived_and_checks_everyone_once() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let Some(postgres) = OwnPostgres::start() else {
        return;
    };
    let w = World::with(Options {
        backend: Backend::Postgres,
        schedule: NO_TICKS,
        redis_url: Some(redis_url),
        lost_after_secs: 2,
        database_url: Some(postgres.url.clone()),
        ..Options::default()
    })
    .await;
    members(&w, 3500, MEMBERS as u32).await;
    // Each check makes two calls (a token refresh, then the identity): a sweep of several
    // seconds, with checks in flight whenever the database goes.
    w.mock.set_faults(Faults {
        latency_ms: 300,
        ..Faults::default()
    });
    let sweep = start_sweep(&w, "postgres-crash-test").await;
    let http_port = free_port();
    let mut worker = Reaped(worker_process(&w, http_port));

    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    let before_crash = sweeps::progress(&w.ctx.db, sweep).await.unwrap();
    postgres.crash();
    assert!(
        before_crash.done < MEMBERS / 2,
        "crashed too late to prove anything: {before_crash:?}"
    );
    tokio::time::sleep(DOWN_FOR).await;
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "the worker died with the database"
    );
    postgres.start_again();

    let p = wait_until(&w, sweep, Duration::from_secs(45), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, MEMBERS).await;
    assert!(
        worker.0.try_wait().unwrap().is_none(),
        "the worker died after the database came back"
    );
    let ready = reqwest::get(format!("http://127.0.0.1:{http_port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "the worker sees the database again");
    assert_each_member_checked_once(&w).await;
}

/// The audit trail holds exactly one sweep check per member, and it succeeded: nobody was
/// checked twice (at once or one after the other) or recorded as failed because of the crash.
async fn assert_each_member_checked_once(w: &World) {
    let member_ids: Vec<UserId> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .into_tuple()
        .all(&w.ctx.db)
        .await
        .unwrap();
    let checks: Vec<(UserId, String)> = membership_check::Entity::find()
        .select_only()
        .column(membership_check::Column::UserId)
        .column(membership_check::Column::Outcome)
        .filter(membership_check::Column::Trigger.eq("sweep"))
        .into_tuple()
        .all(&w.ctx.db)
        .await
        .unwrap();
    let mut by_member: HashMap<UserId, Vec<String>> = HashMap::new();
    for (user_id, outcome) in checks {
        by_member.entry(user_id).or_default().push(outcome);
    }
    assert_eq!(member_ids.len() as u64, MEMBERS);
    for id in member_ids {
        assert_eq!(
            by_member.get(&id).map(Vec::as_slice),
            Some(&["verified".to_owned()][..]),
            "member {id}'s sweep checks"
        );
    }
}
