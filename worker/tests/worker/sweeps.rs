//! Sweeps: every member verified once, whatever is lost or fails on the way.

use std::time::Duration;

use domain::work::sweeps::{self, Progress};
use entity::membership_check;
use patreon_mock::{EndpointFault, Faults, MockMembership, MockUser};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use test_support::{Backend, eventually_matching, postgres_enabled};

use crate::helpers::*;

async fn sweep_checks(w: &World) -> u64 {
    membership_check::Entity::find()
        .filter(membership_check::Column::Trigger.eq("sweep"))
        .count(&w.ctx.db)
        .await
        .unwrap()
}

async fn every_member_is_verified_once_and_changes_are_counted(backend: Backend) {
    let w = World::new(backend).await;
    for n in 0..12 {
        w.signed_in(MockUser::active_patron(&format!("{}", 500 + n), CAMPAIGN))
            .await;
    }
    // Three cancel at Patreon before the sweep.
    for n in 0..3 {
        let id = format!("{}", 500 + n);
        w.mock
            .set_membership(&id, CAMPAIGN, Some(MockMembership::former(&id, CAMPAIGN)));
    }
    let (sweep, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(
        (p.total, p.done, p.verified, p.changed, p.failed, p.skipped),
        (12, 12, 9, 3, 0, 0)
    );
    assert_eq!(sweep_checks(&w).await, 12, "one check per member");
    let finished = entity::sweep::Entity::find_by_id(sweep.id)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap();
    assert!(finished.finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_verifies_every_member_once_on_sqlite() {
    every_member_is_verified_once_and_changes_are_counted(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_verifies_every_member_once_on_postgres() {
    if postgres_enabled() {
        every_member_is_verified_once_and_changes_are_counted(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tick_starts_one_sweep_however_many_replicas_ask() {
    let w = World::new(Backend::Sqlite).await;
    w.signed_in(MockUser::active_patron("600", CAMPAIGN)).await;
    let now = chrono::Utc::now();
    let first = sweeps::start(
        &w.ctx.db,
        "2026-12-01T00:00:00Z",
        entity::states::SweepTrigger::Schedule,
        now,
    )
    .await
    .unwrap();
    let second = sweeps::start(
        &w.ctx.db,
        "2026-12-01T00:00:00Z",
        entity::states::SweepTrigger::Schedule,
        now,
    )
    .await
    .unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(second.total, 1);
    assert_eq!(
        entity::sweep_item::Entity::find()
            .count(&w.ctx.db)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_lost_by_the_queue_are_pushed_again_from_the_database() {
    let w = World::new(Backend::Sqlite).await;
    for n in 0..5 {
        w.signed_in(MockUser::active_patron(&format!("{}", 700 + n), CAMPAIGN))
            .await;
    }
    let sweep = sweeps::start(
        &w.ctx.db,
        "lost-queue",
        entity::states::SweepTrigger::Manual,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // Pushed to a queue that then loses everything (a Redis restart without persistence).
    let doomed_file = test_support::TestDb::create(Backend::Sqlite).await;
    let doomed = domain::work::jobs::JobQueue::sqlite(&doomed_file.url, "doomed")
        .await
        .unwrap();
    assert_eq!(
        domain::work::ledger::push::push_pending_items(&w.ctx.db, &doomed, sweep.id, 2)
            .await
            .unwrap(),
        5
    );
    drop(doomed);

    // Nothing is pending any more, but nothing finished: the reconciler pushes them again.
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    worker::sweeper::reconcile_sweep(&w.ctx, sweep.id, chrono::Duration::zero())
        .await
        .unwrap();
    let p = eventually_matching(
        "the sweep to complete",
        Duration::from_secs(15),
        || async { sweeps::progress(&w.ctx.db, sweep.id).await.unwrap() },
        Progress::is_complete,
    )
    .await;
    assert_eq!((p.done, p.verified, p.failed), (5, 5, 0));
    assert_eq!(sweep_checks(&w).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_and_dead_links_are_accounted_for() {
    let w = World::new(Backend::Sqlite).await;
    for n in 0..4 {
        w.signed_in(MockUser::active_patron(&format!("{}", 800 + n), CAMPAIGN))
            .await;
    }
    w.mock.revoke_app("803");
    let throttled = EndpointFault {
        fail_next: 3,
        status: 429,
        retry_after_secs: Some(1),
        ..EndpointFault::default()
    };
    w.mock.set_faults(Faults {
        identity: throttled,
        ..Faults::default()
    });
    let (_, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(
        (p.total, p.done, p.failed, p.skipped),
        (4, 4, 0, 1),
        "{p:?}"
    );
    let revoked = domain::members::users::find_by_patreon_id(&w.ctx.db, &"803".into())
        .await
        .unwrap()
        .unwrap();
    assert!(
        revoked.needs_relogin && revoked.membership_active,
        "a dead link keeps the last status"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_with_no_members_finishes_at_once() {
    let w = World::new(Backend::Sqlite).await;
    let (sweep, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(p.total, 0);
    let row = entity::sweep::Entity::find_by_id(sweep.id)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap();
    assert!(row.finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_start_each_tick_once() {
    let w = World::with_schedule(Backend::Sqlite, "* * * * * *").await; // every second
    w.signed_in(MockUser::active_patron("900", CAMPAIGN)).await;
    let replicas = [
        tokio::spawn(worker::sweeper::run_scheduler(w.ctx.clone())),
        tokio::spawn(worker::sweeper::run_scheduler(w.ctx.clone())),
    ];
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    test_support::eventually_true("two ticks' sweeps", Duration::from_secs(10), || async {
        entity::sweep::Entity::find()
            .count(&w.ctx.db)
            .await
            .unwrap()
            >= 2
    })
    .await;
    for r in replicas {
        r.abort();
    }
    let sweeps = entity::sweep::Entity::find().all(&w.ctx.db).await.unwrap();
    assert!(
        sweeps.len() >= 2,
        "{} sweeps in 2.5 s of a per-second schedule",
        sweeps.len()
    );
    let items = entity::sweep_item::Entity::find()
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(
        items,
        sweeps.len() as u64,
        "each tick owed the one member once, not once per replica"
    );
    assert!(
        sweeps
            .iter()
            .all(|s| s.trigger == entity::states::SweepTrigger::Schedule && s.total == 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_stays_inside_patreons_rate_limit_instead_of_meeting_429s() {
    let w = World::new(Backend::Sqlite).await;
    for n in 0..30 {
        w.signed_in(MockUser::active_patron(&format!("{}", 1000 + n), CAMPAIGN))
            .await;
    }
    // Patreon (the mock) allows 12 calls per 2 s from now on; we budget 10.
    let limit = patreon_mock::RateLimit {
        per_client_per_2s: 12,
        per_token_per_min: 0,
    };
    w.mock.set_faults(Faults {
        rate_limit: Some(limit),
        ..Faults::default()
    });
    let mut settings = w.ctx.settings.patreon.clone();
    settings.requests_per_2s = 10;
    let ctx = worker::WorkerCtx {
        patreon: domain::patreon::PatreonClient::new(settings).unwrap(),
        ..w.ctx.clone()
    };
    let (_, p) = worker::manual_sweep::sweep_now(&ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!((p.done, p.failed), (30, 0));
    assert_eq!(
        w.mock.stats().rate_limited,
        0,
        "the budget, not Patreon's 429s, paced the sweep"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_refreshes_tokens_that_would_die_before_the_next_sweep() {
    let w = World::new(Backend::Sqlite).await;
    let soon = w.signed_in(MockUser::active_patron("1100", CAMPAIGN)).await;
    let later = w.signed_in(MockUser::active_patron("1101", CAMPAIGN)).await;
    // The window is the time to the next tick (0 to 16 days) plus a week: a token for 5 more
    // days must be refreshed now,
    // one for 60 more days need not be.
    use sea_orm::{EntityTrait, sea_query::Expr};
    for (id, days) in [(soon, 5), (later, 60)] {
        entity::user::Entity::update_many()
            .col_expr(
                entity::user::Column::TokenExpiresAt,
                Expr::value(chrono::Utc::now() + chrono::Duration::days(days)),
            )
            .filter(entity::user::Column::Id.eq(id))
            .exec(&w.ctx.db)
            .await
            .unwrap();
    }
    let (_, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(p.failed, 0);
    assert_eq!(
        w.mock.stats().token_refresh_grants,
        1,
        "only the token that would expire first"
    );
    let refreshed = entity::user::Entity::find_by_id(soon)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap();
    assert!(refreshed.token_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::days(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_delivered_twice_runs_once() {
    let w = World::new(Backend::Sqlite).await;
    let user = w.signed_in(MockUser::active_patron("1200", CAMPAIGN)).await;
    let request = w.member_recheck(user).await;
    let job = domain::work::jobs::Job::VerifyMembership {
        user_id: user,
        trigger: domain::members::membership_checks::CheckTrigger::Member,
        request_id: Some(request.id.clone()),
        sweep_id: None,
    };
    let ctx = apalis::prelude::Data::new(w.ctx.clone());
    worker::jobs::handle(job.clone(), ctx.clone())
        .await
        .unwrap();
    worker::jobs::handle(job, ctx).await.unwrap(); // the queue delivered it again
    let checks = membership_check::Entity::find()
        .filter(membership_check::Column::Trigger.eq("member"))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(checks, 1);
    let done = domain::work::ledger::requests::find(&w.ctx.db, &request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((done.status.as_str(), done.attempts), ("succeeded", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_check_that_gave_up_can_be_retried_and_reopens_the_sweep() {
    let w = World::new(Backend::Sqlite).await;
    let user = w.signed_in(MockUser::active_patron("1300", CAMPAIGN)).await;
    let refused = EndpointFault {
        fail_next: 1,
        status: 400,
        ..EndpointFault::default()
    };
    w.mock.set_faults(Faults {
        identity: refused,
        ..Faults::default()
    });
    let (sweep, p) = worker::manual_sweep::sweep_now(&w.ctx, entity::states::SweepTrigger::Manual)
        .await
        .unwrap();
    assert_eq!(p.failed, 1);

    let dead = domain::work::dead_letters::list(&w.ctx.db, 10)
        .await
        .unwrap();
    let item = domain::work::dead_letters::DeadJobRef::SweepItem {
        sweep_id: sweep.id,
        user_id: user,
    };
    let listed: Vec<_> = dead.iter().map(|d| &d.job).collect();
    assert_eq!(listed, [&item]);
    assert!(
        domain::work::dead_letters::retry(&w.ctx.db, &w.ctx.queue, &item)
            .await
            .unwrap()
    );
    let reopened = entity::sweep::Entity::find_by_id(sweep.id)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        reopened.finished_at.is_none(),
        "the sweep owes a check again"
    );

    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    eventually_matching(
        "the retry to run",
        Duration::from_secs(10),
        || async { sweeps::progress(&w.ctx.db, sweep.id).await.unwrap() },
        |p| p.is_complete() && p.failed == 0,
    )
    .await;
    // The item is marked done a moment before its sweep is closed (two statements).
    eventually_matching(
        "the sweep to close again",
        Duration::from_secs(10),
        || async {
            let found = entity::sweep::Entity::find_by_id(sweep.id)
                .one(&w.ctx.db)
                .await;
            found.unwrap().unwrap()
        },
        |closed| closed.finished_at.is_some(),
    )
    .await;
    assert!(
        domain::work::dead_letters::list(&w.ctx.db, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
