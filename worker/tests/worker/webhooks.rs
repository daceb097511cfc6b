//! Webhook deliveries out of order and under stress: a delivery is older than the stored state
//! only when a check read Patreon after it arrived; a burst of 1,000 distinct events, with the
//! worker process killed in the middle, leaves every member in Patreon's state.

use std::time::Duration;

use domain::{work::jobs::Job, work::webhooks};
use entity::{user, webhook_event};
use patreon_mock::{MockMembership, MockTier, member_id_for};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use test_support::{Backend, eventually_matching, eventually_true, postgres_enabled};

use crate::failures::{Reaped, free_port, worker_process};
use crate::helpers::*;

const MEMBERS: u32 = 100;
const UPDATES_PER_MEMBER: u32 = 10;

/// The member document Patreon would send for `patreon_id` now, with `variant` making each
/// delivery's bytes distinct (as real deliveries are).
pub(crate) async fn member_document(w: &World, patreon_id: &str, variant: u32) -> String {
    let url = format!(
        "{}/api/oauth2/v2/members/{}?include=user,campaign,currently_entitled_tiers\
         &fields%5Bmember%5D=patron_status,last_charge_status,last_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,note",
        w.mock.base_url(),
        member_id_for(patreon_id, CAMPAIGN)
    );
    let body = reqwest::Client::new()
        .get(url)
        .bearer_auth("mock-creator-token")
        .header("User-Agent", "burst-test")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&body).unwrap();
    json["data"]["attributes"]["note"] = serde_json::Value::from(format!("delivery {variant}"));
    json.to_string()
}

/// Records `body` as received at `at`; returns the event id.
pub(crate) async fn deliver(
    w: &World,
    body: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> WebhookEventId {
    let received = webhooks::receive(&w.ctx.db, body.as_bytes(), "members:update", CAMPAIGN, at)
        .await
        .unwrap()
        .unwrap();
    let webhooks::Received::New(event_id) = received else {
        panic!("a new delivery: {received:?}")
    };
    event_id
}

async fn apply(w: &World, event_id: WebhookEventId) -> webhooks::Applied {
    let policy = &w.ctx.settings.membership;
    webhooks::apply(&w.ctx.db, policy, event_id, chrono::Utc::now())
        .await
        .unwrap()
}

async fn paying(w: &World, user_id: UserId) -> bool {
    user::Entity::find_by_id(user_id)
        .one(&w.ctx.db)
        .await
        .unwrap()
        .unwrap()
        .membership_active
}

/// The member's state as Patreon's cancellation delivery would carry it, Patreon left as it was.
async fn cancellation(w: &World, patreon_id: &str, variant: u32) -> String {
    let active = MockMembership::active(patreon_id, CAMPAIGN, MockTier::supporter());
    let cancelled = MockMembership {
        last_charge_date: active.last_charge_date.clone(),
        ..MockMembership::former(patreon_id, CAMPAIGN)
    };
    w.mock.set_membership(patreon_id, CAMPAIGN, Some(cancelled));
    let body = member_document(w, patreon_id, variant).await;
    w.mock.set_membership(patreon_id, CAMPAIGN, Some(active));
    body
}

/// Two deliveries arrive together; the one saying nothing new is applied first. Applying it is
/// no check of Patreon, so the cancellation is not "older than the stored state": it used to be
/// dropped as stale with no recheck, leaving the member in until the next sweep.
#[tokio::test]
async fn a_delivery_applied_first_does_not_make_one_that_arrived_with_it_stale() {
    let w = World::new(Backend::Sqlite).await;
    let member = w
        .signed_in(patreon_mock::MockUser::active_patron("4900", CAMPAIGN))
        .await;
    // Store the state as deliveries describe it, so the next active one changes nothing.
    let first = member_document(&w, "4900", 0).await;
    let first = deliver(&w, &first, chrono::Utc::now()).await;
    apply(&w, first).await;
    let arrived = chrono::Utc::now();
    let nothing_new = deliver(&w, &member_document(&w, "4900", 1).await, arrived).await;
    let cancelled = deliver(&w, &cancellation(&w, "4900", 2).await, arrived).await;
    let applied = apply(&w, nothing_new).await;
    assert!(
        matches!(applied, webhooks::Applied::Applied { changed: false, .. }),
        "{applied:?}"
    );
    let applied = apply(&w, cancelled).await;
    assert!(
        matches!(applied, webhooks::Applied::Applied { changed: true, .. }),
        "{applied:?}"
    );
    assert!(!paying(&w, member).await);
}

/// A check that read Patreon before a delivery arrived, and stored its answer after, knows less
/// than the delivery: the check's time is when it read, not when it stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_that_arrives_during_a_check_is_not_older_than_it() {
    let w = World::new(Backend::Sqlite).await;
    let member = w
        .signed_in(patreon_mock::MockUser::active_patron("4901", CAMPAIGN))
        .await;
    let body = cancellation(&w, "4901", 0).await;
    w.mock.set_faults(patreon_mock::Faults {
        latency_ms: 400,
        ..Default::default()
    });
    let reads = w.mock.stats().identity_calls;
    let ctx = w.ctx.clone();
    let check = tokio::spawn(async move {
        let trigger = domain::members::membership_checks::CheckTrigger::Admin;
        ctx.verifier().verify(&ctx.db, member, trigger).await
    });
    // The check's read has reached Patreon (which answers 400 ms later): the delivery arrives now.
    test_support::eventually_true(
        "the check's read to reach Patreon",
        Duration::from_secs(10),
        || async { w.mock.stats().identity_calls > reads },
    )
    .await;
    let event = deliver(&w, &body, chrono::Utc::now()).await;
    check.await.unwrap().unwrap();
    assert!(
        paying(&w, member).await,
        "Patreon still said active when read"
    );
    let applied = apply(&w, event).await;
    assert!(
        matches!(applied, webhooks::Applied::Applied { changed: true, .. }),
        "{applied:?}"
    );
    assert!(!paying(&w, member).await);
}

/// Applying a delivery and owing its recheck commit together. A worker that died right after
/// applying an out-of-order delivery (an old "active" body after the cancellation) used to leave
/// the member paying with nothing owed: no event pending, no request, nobody to ask Patreon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_applied_by_a_worker_that_died_still_gets_its_recheck() {
    let w = World::with(Options {
        lost_after_secs: 1,
        schedule: NO_TICKS,
        ..Options::default()
    })
    .await;
    let member = w
        .signed_in(patreon_mock::MockUser::active_patron("4902", CAMPAIGN))
        .await;
    let old_active = member_document(&w, "4902", 0).await;
    let cancelled = cancellation(&w, "4902", 1).await;
    let former = MockMembership::former("4902", CAMPAIGN);
    w.mock.set_membership("4902", CAMPAIGN, Some(former));
    // Both applied as a dying worker would: the state is written, nothing reaches the queue.
    for body in [cancelled, old_active] {
        let event = deliver(&w, &body, chrono::Utc::now()).await;
        apply(&w, event).await;
    }
    assert!(
        paying(&w, member).await,
        "the old delivery, applied last, says paying"
    );
    tokio::spawn(worker::startup::run_all(
        w.ctx.clone(),
        std::future::pending(),
    ));
    eventually_true(
        "Patreon to be asked and the cancelled member's access to end",
        Duration::from_secs(15),
        || async { !paying(&w, member).await },
    )
    .await;
}

async fn pending(w: &World) -> u64 {
    webhook_event::Entity::find()
        .filter(webhook_event::Column::Status.eq("pending"))
        .count(&w.ctx.db)
        .await
        .unwrap()
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_a_thousand_events_survives_a_killed_worker() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let w = World::with(Options {
        backend: if postgres_enabled() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        },
        schedule: NO_TICKS,
        redis_url: Some(redis_url),
        lost_after_secs: 3,
        ..Options::default()
    })
    .await;
    let ids: Vec<String> = (0..MEMBERS).map(|n| (4000 + n).to_string()).collect();
    for id in &ids {
        w.signed_in(patreon_mock::MockUser::active_patron(id, CAMPAIGN))
            .await;
    }
    // Each member's pledge changes a few times, then ends; the events arrive in a burst.
    let mut bodies = Vec::new();
    for id in &ids {
        let active = MockMembership::active(id, CAMPAIGN, MockTier::supporter());
        for update in 0..UPDATES_PER_MEMBER - 1 {
            bodies.push(member_document(&w, id, update).await);
        }
        let cancelled = MockMembership {
            last_charge_date: active.last_charge_date.clone(),
            ..MockMembership::former(id, CAMPAIGN)
        };
        w.mock.set_membership(id, CAMPAIGN, Some(cancelled));
        bodies.push(member_document(&w, id, UPDATES_PER_MEMBER).await);
    }
    w.mock.set_faults(patreon_mock::Faults {
        latency_ms: 20,
        ..Default::default()
    });
    let mut first = worker_process(&w, 0);
    let now = chrono::Utc::now();
    for body in &bodies {
        let received =
            webhooks::receive(&w.ctx.db, body.as_bytes(), "members:update", CAMPAIGN, now)
                .await
                .unwrap()
                .unwrap();
        let webhooks::Received::New(event_id) = received else {
            panic!("each delivery is distinct: {received:?}")
        };
        w.ctx
            .queue
            .push(Job::ApplyWebhook { event_id })
            .await
            .unwrap();
    }
    let total = u64::from(MEMBERS * UPDATES_PER_MEMBER);
    eventually_true(
        "the first worker to get going",
        Duration::from_secs(60),
        || async { pending(&w).await <= total * 3 / 4 },
    )
    .await;
    first.kill().unwrap(); // mid-burst: jobs in flight, leases held
    first.wait().unwrap();
    assert!(pending(&w).await > 0, "killed too late to prove anything");

    let _second = Reaped(worker_process(&w, free_port()));
    eventually_matching(
        "no event pending and no member paying (last read: events pending, members paying)",
        Duration::from_secs(120),
        || async {
            let still_paying = user::Entity::find()
                .filter(user::Column::MembershipActive.eq(true))
                .count(&w.ctx.db)
                .await
                .unwrap();
            (pending(&w).await, still_paying)
        },
        |&(pending, still_paying)| pending == 0 && still_paying == 0,
    )
    .await;
    let events = webhook_event::Entity::find()
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(events, total, "every delivery recorded once");
}
