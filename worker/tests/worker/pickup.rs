//! Pickup after a burst: webhooks delivered right after a sweep has run to completion, one at a
//! time with the worker idle in between, are each applied within a second or so, on Redis and
//! on the embedded SQLite queue. An idle worker used to stop polling now and then (see
//! `worker::poll`) and take a job only at its next queue heartbeat, up to 10 s later.

use std::time::{Duration, Instant};

use domain::{work::jobs::Job, work::sweeps::Progress};
use entity::{job_request, user};
use patreon_mock::{Faults, MockMembership};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use test_support::{Backend, eventually, eventually_true, postgres_enabled};

use crate::failures::{Reaped, free_port, members, start_sweep, wait_until, worker_process};
use crate::helpers::*;
use crate::webhooks::{deliver, member_document};

/// Members swept, then each delivered one cancellation.
const MEMBERS: u32 = 40;
const FIRST: u32 = 8100;
/// The worker polls this often here (`QUEUE_POLL_MS`), ten times the default: each idle tick is
/// a chance for the worker to stop polling, so one run of this test meets hundreds of them.
const POLL_MS: &str = "20";
/// How long the worker has been idle when each delivery arrives.
const IDLE: chrono::Duration = chrono::Duration::milliseconds(200);

async fn member(w: &World, patreon_id: &str) -> user::Model {
    user::Entity::find()
        .filter(user::Column::PatreonId.eq(patreon_id))
        .one(&w.ctx.db)
        .await
        .unwrap()
        .expect("a signed-in member")
}

/// When the last recheck of `user_id` finished, if it has.
async fn recheck_finished_at(w: &World, user_id: UserId) -> Option<chrono::DateTime<chrono::Utc>> {
    job_request::Entity::find()
        .filter(job_request::Column::UserId.eq(user_id))
        .filter(job_request::Column::FinishedAt.is_not_null())
        .one(&w.ctx.db)
        .await
        .unwrap()
        .and_then(|r| r.finished_at)
}

async fn webhooks_right_after_a_sweep_are_applied_within_a_second(
    backend: Backend,
    redis_url: Option<String>,
) {
    let mut w = World::with(Options {
        backend,
        schedule: NO_TICKS,
        redis_url,
        ..Options::default()
    })
    .await;
    w.env.insert("QUEUE_POLL_MS", POLL_MS.into());
    members(&w, FIRST, MEMBERS).await;
    // Each check waits on Patreon a little, so the sweep keeps the worker's job slots busy.
    w.mock.set_faults(Faults {
        latency_ms: 20,
        ..Faults::default()
    });
    let _worker = Reaped(worker_process(&w, free_port()));
    let sweep = start_sweep(&w, "pickup").await;
    wait_until(&w, sweep, Duration::from_secs(60), Progress::is_complete).await;

    let mut pickups = Vec::new();
    for n in FIRST..FIRST + MEMBERS {
        // A member cancels and Patreon tells us.
        let patreon_id = n.to_string();
        let former = MockMembership::former(&patreon_id, CAMPAIGN);
        w.mock.set_membership(&patreon_id, CAMPAIGN, Some(former));
        let body = member_document(&w, &patreon_id, n).await;
        let event_id = deliver(&w, &body, chrono::Utc::now()).await;
        let pushed = Instant::now();
        w.ctx
            .queue
            .push(Job::ApplyWebhook { event_id })
            .await
            .unwrap();
        let what = format!(
            "delivery {} to be applied (target: within 1 s)",
            pickups.len()
        );
        let member = eventually(&what, Duration::from_secs(2), || async {
            let member = member(&w, &patreon_id).await;
            (!member.membership_active).then_some(member)
        })
        .await;
        pickups.push(pushed.elapsed());
        // The recheck the delivery asked for runs next; the next delivery finds the worker idle.
        eventually_true(
            "the recheck to finish, then the worker to idle",
            Duration::from_secs(15),
            || async {
                recheck_finished_at(&w, member.id)
                    .await
                    .is_some_and(|at| at + IDLE <= chrono::Utc::now())
            },
        )
        .await;
    }
    pickups.sort();
    println!(
        "push to applied, {} deliveries after a sweep: p50 {:?}, p99 {:?}, max {:?}",
        pickups.len(),
        pickups[pickups.len() / 2],
        pickups[pickups.len() * 99 / 100],
        pickups[pickups.len() - 1]
    );
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_after_a_sweep_webhooks_are_applied_within_a_second_on_redis() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let backend = if postgres_enabled() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    webhooks_right_after_a_sweep_are_applied_within_a_second(backend, Some(redis_url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_after_a_sweep_webhooks_are_applied_within_a_second_on_the_embedded_queue() {
    webhooks_right_after_a_sweep_are_applied_within_a_second(Backend::Sqlite, None).await;
}
