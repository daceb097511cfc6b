//! Single jobs: token refreshes, the per-member check lease, poison jobs and lost rechecks.

use std::time::Duration;

use apalis::prelude::Data;
use domain::{
    work::jobs::{Job, MAX_ATTEMPTS},
    work::ledger::{push, requests},
};
use entity::{membership_check, user};
use patreon_mock::MockUser;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use test_support::{Backend, postgres_enabled};

use crate::helpers::*;

async fn expire_in(w: &World, user_id: UserId, left: chrono::Duration) {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenExpiresAt,
            Expr::value(chrono::Utc::now() + left),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(&w.ctx.db)
        .await
        .unwrap();
}

async fn load(w: &World, user_id: UserId) -> user::Model {
    user::Entity::find_by_id(user_id)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap()
}

async fn twenty_refresh_triggers_make_one_refresh_call(backend: Backend) {
    let w = World::new(backend).await;
    let member = w.signed_in(MockUser::active_patron("2000", CAMPAIGN)).await;
    expire_in(&w, member, chrono::Duration::hours(2)).await;
    let before = load(&w, member).await;
    let ctx = Data::new(w.ctx.clone());
    let runs = (0..20).map(|_| {
        let job = Job::RefreshToken {
            user_id: member,
            attempt: 0,
        };
        tokio::spawn(worker::jobs::handle(job, ctx.clone()))
    });
    for run in futures_util::future::join_all(runs).await {
        run.unwrap().unwrap();
    }
    assert_eq!(w.mock.stats().token_refresh_grants, 1);
    let after = load(&w, member).await;
    assert_eq!(after.token_version, before.token_version + 1);
    assert!(after.token_expires_at.unwrap() > chrono::Utc::now() + chrono::Duration::days(20));
    assert!(!after.needs_relogin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refresh_triggers_make_one_refresh_call_on_sqlite() {
    twenty_refresh_triggers_make_one_refresh_call(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refresh_triggers_make_one_refresh_call_on_postgres() {
    if postgres_enabled() {
        twenty_refresh_triggers_make_one_refresh_call(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_link_is_flagged_once_and_not_refreshed_again() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2010", CAMPAIGN)).await;
    expire_in(&w, member, chrono::Duration::hours(2)).await;
    w.mock.revoke_app("2010");
    let ctx = Data::new(w.ctx.clone());
    for _ in 0..3 {
        let job = Job::RefreshToken {
            user_id: member,
            attempt: 0,
        };
        worker::jobs::handle(job, ctx.clone()).await.unwrap();
    }
    assert_eq!(
        w.mock.stats().token_refresh_grants,
        1,
        "invalid_grant is final: one call, no loop"
    );
    let after = load(&w, member).await;
    assert!(after.needs_relogin);
    assert!(after.refresh_token.is_none() && after.access_token.is_none());
    assert!(
        after.membership_active,
        "the last known status stands until it goes stale"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_refresh_failure_is_retried_later() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2020", CAMPAIGN)).await;
    expire_in(&w, member, chrono::Duration::hours(2)).await;
    w.mock.set_faults(patreon_mock::Faults {
        token: patreon_mock::EndpointFault {
            fail_next: 1,
            status: 503,
            ..Default::default()
        },
        ..Default::default()
    });
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    w.ctx
        .queue
        .push(Job::RefreshToken {
            user_id: member,
            attempt: 0,
        })
        .await
        .unwrap();
    test_support::eventually_true(
        "the retry to refresh the token",
        Duration::from_secs(15),
        || async {
            load(&w, member).await.token_expires_at.unwrap()
                >= chrono::Utc::now() + chrono::Duration::days(20)
        },
    )
    .await;
    assert_eq!(
        w.mock.stats().token_refresh_grants,
        2,
        "one 503, one success"
    );
    assert!(!load(&w, member).await.needs_relogin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_queues_refreshes_for_tokens_about_to_expire() {
    let w = World::new(Backend::Sqlite).await;
    let soon = w.signed_in(MockUser::active_patron("2030", CAMPAIGN)).await;
    let later = w.signed_in(MockUser::active_patron("2031", CAMPAIGN)).await;
    expire_in(&w, soon, chrono::Duration::days(1)).await;
    expire_in(&w, later, chrono::Duration::days(20)).await;
    assert_eq!(worker::reconciler::push_refreshes(&w.ctx).await.unwrap(), 1);
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    test_support::eventually_true("a refresh to run", Duration::from_secs(10), || {
        std::future::ready(w.mock.stats().token_refresh_grants >= 1)
    })
    .await;
    test_support::eventually_true(
        "the refreshed pair to be stored",
        Duration::from_secs(10),
        || async {
            load(&w, soon).await.token_expires_at.unwrap()
                > chrono::Utc::now() + chrono::Duration::days(20)
        },
    )
    .await;
    assert_eq!(w.mock.stats().token_refresh_grants, 1);
    assert!(
        load(&w, soon).await.token_expires_at.unwrap()
            > chrono::Utc::now() + chrono::Duration::days(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_of_a_member_already_being_checked_waits_for_it() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2040", CAMPAIGN)).await;
    let request = w.member_recheck(member).await;
    // Another delivery of this member's check holds the lease, as a live run would.
    let held = domain::work::leases::try_acquire(
        &w.ctx.db,
        &format!("verify:{member}"),
        chrono::Duration::minutes(2),
    )
    .await
    .unwrap()
    .expect("lease free");
    let identity_calls = w.mock.stats().identity_calls;
    let job = requests::job_for(&request);
    worker::jobs::handle(job, Data::new(w.ctx.clone()))
        .await
        .unwrap();
    assert_eq!(
        w.mock.stats().identity_calls,
        identity_calls,
        "no second check alongside the first"
    );
    let r = requests::find(&w.ctx.db, &request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.status.as_str(), r.attempts), ("queued", 0));

    // Once the first one lets go, the job that was handed back runs.
    domain::work::leases::release(&w.ctx.db, held)
        .await
        .unwrap();
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    let done = w.finished_request(&request.id).await;
    assert_eq!(done.status, entity::states::RequestStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_crashing_its_worker_ends_dead() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2050", CAMPAIGN)).await;
    let request = w.member_recheck(member).await;
    // Each of these starts was a run that took its worker down before it could finish.
    for _ in 0..MAX_ATTEMPTS {
        requests::start(&w.ctx.db, &request.id).await.unwrap();
    }
    let identity_calls = w.mock.stats().identity_calls;
    let outcome = worker::jobs::handle(requests::job_for(&request), Data::new(w.ctx.clone())).await;
    assert!(outcome.is_err(), "the queue must not retry it either");
    assert_eq!(w.mock.stats().identity_calls, identity_calls);
    let r = requests::find(&w.ctx.db, &request.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.status.as_str(), r.error.as_deref()),
        ("failed", Some("crashed"))
    );
    let dead = domain::work::dead_letters::list(&w.ctx.db, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, MAX_ATTEMPTS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rechecks_the_queue_lost_are_pushed_again_and_run_once() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2060", CAMPAIGN)).await;
    // Accepted and recorded, but the push never reached the queue (or the queue lost it).
    let request = w.member_recheck(member).await;
    let fresh = push::repush_stale_requests(&w.ctx.db, &w.ctx.queue, chrono::Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(fresh, 0, "a request just made is not presumed lost");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let lost =
        push::repush_stale_requests(&w.ctx.db, &w.ctx.queue, chrono::Duration::milliseconds(10))
            .await
            .unwrap();
    assert_eq!(lost, 1);
    tokio::spawn(worker::startup::run(
        w.ctx.clone(),
        w.ctx.queue.clone(),
        std::future::pending(),
    ));
    let done = w.finished_request(&request.id).await;
    assert_eq!((done.status.as_str(), done.attempts), ("succeeded", 1));
    let checks = membership_check::Entity::find()
        .filter(membership_check::Column::UserId.eq(member))
        .filter(membership_check::Column::Trigger.eq("member"))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(checks, 1);
}

/// A delivery's recheck is recorded like a member's, so when the queue loses it (a worker killed
/// with it in flight) the reconciler pushes it again, and it runs as a webhook check. Before, it
/// was a bare queue entry: lost with the queue, it left the member as the delivery said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliverys_recheck_lost_by_the_queue_is_pushed_again() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2070", CAMPAIGN)).await;
    let former = patreon_mock::MockMembership::former("2070", CAMPAIGN);
    w.mock.set_membership("2070", CAMPAIGN, Some(former));
    let body = crate::webhooks::member_document(&w, "2070", 0).await;
    let event_id = crate::webhooks::deliver(&w, &body, chrono::Utc::now()).await;
    // Applied, and its recheck queued... then the queue loses everything.
    worker::webhook::run(&w.ctx, event_id).await.unwrap();
    let request = entity::job_request::Entity::find()
        .filter(entity::job_request::Column::UserId.eq(member))
        .filter(entity::job_request::Column::Trigger.eq("webhook"))
        .one(&w.ctx.db)
        .await
        .unwrap()
        .expect("the recheck is recorded");
    let fresh_queue = domain::work::jobs::JobQueue::sqlite(
        &format!(
            "sqlite://{}/lost-queue-{}.db?mode=rwc",
            std::env::temp_dir().display(),
            domain::infra::secrets::random_id()
        ),
        "lost",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let repushed =
        push::repush_stale_requests(&w.ctx.db, &fresh_queue, chrono::Duration::milliseconds(10))
            .await
            .unwrap();
    assert_eq!(repushed, 1);
    let mut ctx = w.ctx.clone();
    ctx.queue = fresh_queue.clone();
    tokio::spawn(worker::startup::run(
        ctx,
        fresh_queue,
        std::future::pending(),
    ));
    let done = w.finished_request(&request.id).await;
    assert_eq!(
        done.status,
        entity::states::RequestStatus::Succeeded,
        "{done:?}"
    );
    assert!(!load(&w, member).await.membership_active);
    let webhook_checks = membership_check::Entity::find()
        .filter(membership_check::Column::UserId.eq(member))
        .filter(membership_check::Column::Trigger.eq("webhook"))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert!(webhook_checks >= 1);
}

/// A webhook's recheck answers a member who asks meanwhile, but once it has finished it does not
/// use up the member's own "recheck my status" (their cooldown counts their own requests).
#[tokio::test]
async fn a_webhooks_recheck_does_not_use_up_the_members_own_recheck() {
    use domain::members::membership_checks::CheckTrigger;
    use domain::work::ledger::Requested;
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("2080", CAMPAIGN)).await;
    let cooldown = chrono::Duration::minutes(1);
    let ask = |by: Option<UserId>, trigger: CheckTrigger| {
        requests::request(&w.ctx.db, member, by, trigger, cooldown, chrono::Utc::now())
    };
    let Requested::New(webhook) = ask(None, CheckTrigger::Webhook).await.unwrap() else {
        panic!("a new webhook recheck")
    };
    let Requested::AlreadyOpen(open) = ask(Some(member), CheckTrigger::Member).await.unwrap()
    else {
        panic!("the open webhook recheck answers the member")
    };
    assert_eq!(open.id, webhook.id);
    let _ = requests::succeed(&w.ctx.db, &webhook.id, "not_a_paying_member")
        .await
        .unwrap();
    let Requested::New(own) = ask(Some(member), CheckTrigger::Member).await.unwrap() else {
        panic!("the member's own recheck is not too soon")
    };
    let _ = requests::succeed(&w.ctx.db, &own.id, "not_a_paying_member")
        .await
        .unwrap();
    assert!(matches!(
        ask(Some(member), CheckTrigger::Member).await.unwrap(),
        Requested::TooSoon(_)
    ));
}
