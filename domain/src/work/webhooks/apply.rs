//! Applying a recorded delivery: the member's state follows it at once, and a change is
//! confirmed by a recheck through the API, recorded in the same transaction.

use chrono::{DateTime, Utc};
use entity::{job_request, user, webhook_event};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, sea_query::Expr,
};

use crate::infra::metrics::metrics;
use crate::members::membership::MembershipPolicy;
use crate::members::membership_checks::CheckTrigger;
use crate::members::verification::{Verification, record_state_in};
use crate::patreon::{Identity, resources};
use crate::work::job_requests::{self, Requested};
use crate::work::webhooks::order::older_than_stored;
use crate::{Result, members::users};
use crate::{UserId, WebhookEventId};

/// What applying an event came to.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// The member's state now follows the event. `recheck` is the confirming check recorded
    /// with it when the event changed something, for the caller to queue.
    Applied {
        user_id: UserId,
        changed: bool,
        recheck: Option<job_request::Model>,
    },
    /// Older than what is stored: nothing changes. `recheck` when only Patreon's charge or
    /// pledge dates said so (ask Patreon to be sure); not when a successful check ran after it
    /// arrived or a later delivery was applied.
    Stale {
        user_id: UserId,
        recheck: Option<job_request::Model>,
    },
    /// No user with that Patreon id yet: kept for their first sign-in.
    Waiting,
    /// Not pending (done already, or gone).
    Nothing,
}

/// Applies pending event `id` with the shared membership rule.
///
/// The new state, the event's outcome and the recheck that confirms it commit together: a worker
/// killed in between would otherwise leave a state taken from an out-of-order delivery with no
/// check owed (a retry would find the state already there and see nothing to confirm).
pub async fn apply(
    db: &DatabaseConnection,
    policy: &MembershipPolicy,
    id: WebhookEventId,
    now: DateTime<Utc>,
) -> Result<Applied> {
    let Some(event) = webhook_event::Entity::find_by_id(id).one(db).await? else {
        return Ok(Applied::Nothing);
    };
    if event.status != "pending" {
        return Ok(Applied::Nothing);
    }
    let parsed = serde_json::from_str::<serde_json::Value>(&event.body)
        .ok()
        .and_then(|json| resources::parse_member_document(&json).ok());
    let Some(member) = parsed else {
        finish(db, id, "failed", "malformed", now).await?;
        return Ok(Applied::Nothing);
    };
    let user = match &member.patreon_user_id {
        Some(patreon_id) => users::find_by_patreon_id(db, patreon_id).await?,
        None => None,
    };
    let Some(before) = user else {
        finish(db, id, "waiting", "unknown_user", now).await?;
        return Ok(Applied::Waiting);
    };
    let txn = crate::infra::db::begin_write(db).await?;
    if let Some(older) = older_than_stored(&member.snapshot, event.received_at, &before) {
        finish(&txn, id, "stale", "older_than_stored", now).await?;
        let recheck = if older.owes_recheck() {
            owe_recheck(&txn, before.id, now).await?
        } else {
            None
        };
        txn.commit().await?;
        observe_lag(&event);
        return Ok(Applied::Stale {
            user_id: before.id,
            recheck,
        });
    }
    let identity = Identity {
        patreon_id: before.patreon_id.clone(),
        email: before.email.clone(),
        email_verified: false,
        full_name: before.full_name.clone(),
        image_url: before.avatar_url.clone(),
        membership: Some(member.snapshot),
    };
    let verification = record_state_in(
        &txn,
        policy,
        &before,
        &identity,
        CheckTrigger::Webhook,
        None,
    )
    .await?;
    let changed = matches!(verification, Verification::Verified { changed: true, .. });
    mark_applied_delivery(&txn, before.id, event.received_at).await?;
    let outcome = if changed { "changed" } else { "unchanged" };
    finish(&txn, id, "applied", outcome, now).await?;
    // Deliveries can be stale or out of order: a change is confirmed by reading Patreon.
    let recheck = if changed {
        owe_recheck(&txn, before.id, now).await?
    } else {
        None
    };
    txn.commit().await?;
    observe_lag(&event);
    Ok(Applied::Applied {
        user_id: before.id,
        changed,
        recheck,
    })
}

/// Records the recheck that confirms an event, unless one is open already: that one runs after
/// this event (events apply under the member's lease, which a running check holds) and reads
/// Patreon then. Returns a new request, to be queued.
async fn owe_recheck(
    txn: &DatabaseTransaction,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<Option<job_request::Model>> {
    let requested = job_requests::request_verification(
        txn,
        user_id,
        None,
        CheckTrigger::Webhook,
        chrono::Duration::zero(),
        now,
    )
    .await?;
    Ok(match requested {
        Requested::New(request) => Some(request),
        Requested::AlreadyOpen(_) | Requested::TooSoon(_) => None,
    })
}

/// Remembers the first receipt of the latest delivery applied to the member: one received
/// before it, saying nothing newer, is older than the state it would overwrite.
async fn mark_applied_delivery(
    txn: &DatabaseTransaction,
    user_id: UserId,
    received_at: DateTime<Utc>,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::DeliveryReceivedAt, Expr::value(received_at))
        .filter(user::Column::Id.eq(user_id))
        .filter(
            Condition::any()
                .add(user::Column::DeliveryReceivedAt.is_null())
                .add(user::Column::DeliveryReceivedAt.lt(received_at)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

/// Receipt to stored: how far behind Patreon the members' states are.
fn observe_lag(event: &webhook_event::Model) {
    let lag = (Utc::now() - event.received_at).num_milliseconds().max(0) as f64;
    metrics().webhook_lag_seconds.observe(lag / 1000.0);
}

async fn finish(
    db: &impl ConnectionTrait,
    id: WebhookEventId,
    status: &str,
    outcome: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::Status, Expr::value(status))
        .col_expr(webhook_event::Column::Outcome, Expr::value(outcome))
        .col_expr(webhook_event::Column::ProcessedAt, Expr::value(now))
        .filter(webhook_event::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
