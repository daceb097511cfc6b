//! How deliveries are ordered when Patreon's order is lost: by the charge and pledge dates they
//! carry, then by their first receipt; and a body once applied stays a repeat for good, even
//! after its retention dropped the body itself.

use chrono::{Duration, Utc};
use domain::work::webhooks::{self, Applied, Received};
use entity::user;
use sea_orm::EntityTrait;
use serde_json::Value;
use test_support::{Backend, postgres_enabled};

use crate::helpers::*;
use crate::webhooks::{deliver, member_document};

async fn world(backend: Backend) -> Option<World> {
    if backend == Backend::Postgres && !postgres_enabled() {
        return None;
    }
    Some(
        World::with(Options {
            backend,
            ..Options::default()
        })
        .await,
    )
}

async fn apply(w: &World, event_id: WebhookEventId) -> Applied {
    let policy = &w.ctx.settings.membership;
    webhooks::apply(&w.ctx.db, policy, event_id, Utc::now())
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

/// `document` with its member attributes changed by `edit`.
fn edited(document: &str, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut json: Value = serde_json::from_str(document).unwrap();
    edit(json["data"]["attributes"].as_object_mut().unwrap());
    json.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_received_before_one_already_applied_changes_nothing_on_sqlite() {
    if let Some(w) = world(Backend::Sqlite).await {
        a_delivery_received_before_one_already_applied_changes_nothing(w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_received_before_one_already_applied_changes_nothing_on_postgres() {
    if let Some(w) = world(Backend::Postgres).await {
        a_delivery_received_before_one_already_applied_changes_nothing(w).await;
    }
}

/// The "active" delivery and the refund of the same charge arrive in that order, but their jobs
/// run the other way round while Patreon cannot be read: the refund must stand.
async fn a_delivery_received_before_one_already_applied_changes_nothing(w: World) {
    let member = w
        .signed_in(patreon_mock::MockUser::active_patron("4950", CAMPAIGN))
        .await;
    let active = member_document(&w, "4950", 0).await;
    let refund = edited(&active, |attrs| {
        attrs.insert("last_charge_status".into(), "Refunded".into());
    });
    let first = Utc::now();
    let active = deliver(&w, &active, first).await;
    let refund = deliver(&w, &refund, first + Duration::seconds(1)).await;

    let applied = apply(&w, refund).await;
    assert!(
        matches!(applied, Applied::Applied { changed: true, .. }),
        "{applied:?}"
    );
    let applied = apply(&w, active).await;
    assert!(
        matches!(applied, Applied::Stale { recheck: None, .. }),
        "{applied:?}"
    );
    assert!(!paying(&w, member).await, "the refund stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_about_an_earlier_pledge_changes_nothing_on_sqlite() {
    if let Some(w) = world(Backend::Sqlite).await {
        a_delivery_about_an_earlier_pledge_changes_nothing(w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_about_an_earlier_pledge_changes_nothing_on_postgres() {
    if let Some(w) = world(Backend::Postgres).await {
        a_delivery_about_an_earlier_pledge_changes_nothing(w).await;
    }
}

/// The cancellation of a pledge that ended long ago, first received now (a late re-send),
/// carries no charge date, but its pledge started before the member's current one.
async fn a_delivery_about_an_earlier_pledge_changes_nothing(w: World) {
    let member = w
        .signed_in(patreon_mock::MockUser::active_patron("4951", CAMPAIGN))
        .await;
    let earlier_pledge = (Utc::now() - Duration::days(400)).to_rfc3339();
    let old_cancellation = edited(&member_document(&w, "4951", 0).await, |attrs| {
        attrs.insert("patron_status".into(), "former_patron".into());
        attrs.insert("last_charge_status".into(), Value::Null);
        attrs.insert("last_charge_date".into(), Value::Null);
        attrs.insert("currently_entitled_amount_cents".into(), 0.into());
        attrs.insert("pledge_relationship_start".into(), earlier_pledge.into());
    });
    let event = deliver(&w, &old_cancellation, Utc::now()).await;

    let applied = apply(&w, event).await;
    assert!(
        matches!(
            applied,
            Applied::Stale {
                recheck: Some(_),
                ..
            }
        ),
        "older than stored, and Patreon is asked to be sure: {applied:?}"
    );
    assert!(paying(&w, member).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_body_replayed_after_its_retention_is_still_a_repeat_on_sqlite() {
    if let Some(w) = world(Backend::Sqlite).await {
        an_applied_body_replayed_after_its_retention_is_still_a_repeat(w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_applied_body_replayed_after_its_retention_is_still_a_repeat_on_postgres() {
    if let Some(w) = world(Backend::Postgres).await {
        an_applied_body_replayed_after_its_retention_is_still_a_repeat(w).await;
    }
}

async fn an_applied_body_replayed_after_its_retention_is_still_a_repeat(w: World) {
    w.signed_in(patreon_mock::MockUser::active_patron("4952", CAMPAIGN))
        .await;
    let body = member_document(&w, "4952", 0).await;
    let event = deliver(&w, &body, Utc::now()).await;
    apply(&w, event).await;

    let later = Utc::now() + domain::work::retention::WEBHOOK_EVENTS + Duration::days(1);
    domain::work::retention::purge(&w.ctx.db, later)
        .await
        .unwrap();
    let again = webhooks::receive(
        &w.ctx.db,
        body.as_bytes(),
        "members:update",
        CAMPAIGN,
        later,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again, Received::Duplicate);
}
