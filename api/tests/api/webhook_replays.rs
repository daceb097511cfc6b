//! Deliveries seen again, or first seen late: a body already applied is never applied again,
//! however long after it comes back, while Patreon's own late re-send of a delivery we never
//! received is still news. Hours pass by moving the recorded times back, not by waiting.

use std::time::Duration;

use entity::{user, webhook_event};
use patreon_mock::{EndpointFault, Faults, MockMembership, MockTier};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;
use test_support::eventually_true;

use crate::helpers::*;
use crate::webhooks::{deliver_signed, me, me_until, member_document, with_webhooks};

/// Moves every recorded time of deliveries and checks `hours` into the past.
async fn hours_pass(app: &TestApp, hours: i64) {
    let then = chrono::Utc::now() - chrono::Duration::hours(hours);
    for event in webhook_event::Entity::find().all(&app.db).await.unwrap() {
        let earlier = |at: chrono::DateTime<chrono::Utc>| at.min(then);
        let mut row: webhook_event::ActiveModel = event.clone().into();
        row.received_at = sea_orm::Set(earlier(event.received_at));
        row.processed_at = sea_orm::Set(event.processed_at.map(earlier));
        webhook_event::Entity::update(row)
            .exec(&app.db)
            .await
            .unwrap();
    }
    user::Entity::update_many()
        .col_expr(user::Column::LastChecked, Expr::value(then))
        .filter(user::Column::LastChecked.is_not_null())
        .exec(&app.db)
        .await
        .unwrap();
}

/// The charge date a member document carries, to describe later states of the same charge.
fn charge_date_of(document: &str) -> Option<String> {
    let json: Value = serde_json::from_str(document).unwrap();
    json["data"]["attributes"]["last_charge_date"]
        .as_str()
        .map(str::to_owned)
}

/// Patreon answers nothing about members: no check can settle a state.
fn patreon_unreachable() -> Faults {
    let down = EndpointFault {
        fail_next: 10_000,
        status: 503,
        ..Default::default()
    };
    Faults {
        token: down.clone(),
        identity: down.clone(),
        members: down,
        ..Default::default()
    }
}

async fn nothing_pending(app: &TestApp) {
    eventually_true(
        "every delivery processed",
        Duration::from_secs(15),
        || async { app.count("webhook_events WHERE status = 'pending'").await == 0 },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_members_old_active_body_replayed_hours_later_grants_nothing_on_sqlite() {
    a_replayed_active_body_grants_nothing(
        TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refunded_members_old_active_body_replayed_hours_later_grants_nothing_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(with_webhooks()).await {
        a_replayed_active_body_grants_nothing(app).await;
    }
}

async fn a_replayed_active_body_grants_nothing(app: TestApp) {
    let member = app.active_patron("9601");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    // Patreon's "active" delivery is applied.
    let active = member_document(&app, "9601", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:create", &active).await,
        StatusCode::OK
    );
    nothing_pending(&app).await;
    // The charge is refunded (same charge date) while Patreon cannot be read, so no check can
    // undo a wrong state: only the ordering of deliveries protects the member's access.
    app.mock.set_faults(patreon_unreachable());
    let mut refunded = MockMembership::active("9601", CAMPAIGN_ID, MockTier::supporter());
    refunded.last_charge_status = Some("Refunded".into());
    refunded.last_charge_date = charge_date_of(&active);
    app.mock.set_membership("9601", CAMPAIGN_ID, Some(refunded));
    let refund = member_document_while_down(&app, "9601").await;
    assert_eq!(
        deliver_signed(&app, "members:update", &refund).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
    nothing_pending(&app).await;

    // Hours later someone replays the old signed "active" body.
    hours_pass(&app, 2).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:create", &active).await,
        StatusCode::OK,
        "acknowledged, as every valid delivery is"
    );
    nothing_pending(&app).await;
    let after = me(&app, &jwt).await.1;
    assert_eq!(after["isPaidMember"], false, "{after}");
    assert_eq!(after["membershipActive"], false, "{after}");
    assert_eq!(
        app.count("membership_checks WHERE \"trigger\" = 'webhook' AND outcome = 'changed'")
            .await,
        1,
        "only the refund changed anything"
    );
    let events = webhook_event::Entity::find().all(&app.db).await.unwrap();
    assert_eq!(events.len(), 2, "one row per distinct body");
    let an_hour_ago = chrono::Utc::now() - chrono::Duration::hours(1);
    assert!(
        events.iter().all(|e| e.received_at < an_hour_ago),
        "the first receipt is kept: {events:?}"
    );
}

/// The mock's member document, read with its faults lifted for this one read.
async fn member_document_while_down(app: &TestApp, patreon_id: &str) -> String {
    app.mock.set_faults(Faults::default());
    let body = member_document(app, patreon_id, CAMPAIGN_ID).await;
    app.mock.set_faults(patreon_unreachable());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patreons_late_resend_of_a_delivery_never_received_is_applied_on_sqlite() {
    a_late_resend_is_applied(TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patreons_late_resend_of_a_delivery_never_received_is_applied_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(with_webhooks()).await {
        a_late_resend_is_applied(app).await;
    }
}

async fn a_late_resend_is_applied(app: TestApp) {
    let member = app.active_patron("9611");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    let active = member_document(&app, "9611", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &active).await,
        StatusCode::OK
    );
    nothing_pending(&app).await;
    // The member cancels; Patreon's delivery of it fails on the way and is re-sent hours later.
    let mut cancelled = MockMembership::former("9611", CAMPAIGN_ID);
    cancelled.last_charge_date = charge_date_of(&active);
    app.mock
        .set_membership("9611", CAMPAIGN_ID, Some(cancelled));
    let cancellation = member_document(&app, "9611", CAMPAIGN_ID).await;
    hours_pass(&app, 3).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &cancellation).await,
        StatusCode::OK
    );
    let after = me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
    assert_eq!(after["membershipActive"], false, "{after}");
}
