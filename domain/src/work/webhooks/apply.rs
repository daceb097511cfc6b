//! Applying a recorded delivery: the member's state follows it at once, and a change is
//! confirmed by a recheck through the API, recorded in the same transaction.

use chrono::{DateTime, Utc};
use entity::states::DeliveryStatus;
use entity::{job_request, user, webhook_event};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
    sea_query::Expr,
};

use crate::infra::metrics::metrics;
use crate::members::membership::{MemberSnapshot, MembershipPolicy};
use crate::members::membership_checks::CheckTrigger;
use crate::members::verification::{Verification, record_state_in};
use crate::patreon::{Identity, resources};
use crate::work::ledger::deliveries::{self, Settlement};
use crate::work::ledger::requests::{self, Requested};
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
    if event.status != DeliveryStatus::Pending {
        return Ok(Applied::Nothing);
    }
    let parsed = serde_json::from_str::<serde_json::Value>(&event.body)
        .ok()
        .and_then(|json| resources::parse_member_document(&json).ok());
    let Some(member) = parsed else {
        let _ = deliveries::settle(db, id, Settlement::Malformed, now).await?;
        return Ok(Applied::Nothing);
    };
    let user = match &member.patreon_user_id {
        Some(patreon_id) => users::find_by_patreon_id(db, patreon_id).await?,
        None => None,
    };
    let Some(before) = user else {
        let _ = deliveries::settle(db, id, Settlement::Waiting, now).await?;
        return Ok(Applied::Waiting);
    };
    let txn = crate::infra::db::begin_write(db).await?;
    let applied = apply_in(&txn, policy, &event, member.snapshot, &before, now).await?;
    txn.commit().await?;
    observe_lag(&event);
    Ok(applied)
}

/// Applies `event` about `before` (the member as stored) inside `txn`: stale, or the member's
/// state follows `snapshot`, with the confirming recheck when it changed something.
async fn apply_in(
    txn: &DatabaseTransaction,
    policy: &MembershipPolicy,
    event: &webhook_event::Model,
    snapshot: MemberSnapshot,
    before: &user::Model,
    now: DateTime<Utc>,
) -> Result<Applied> {
    let user_id = before.id;
    if let Some(older) = older_than_stored(&snapshot, event.received_at, before) {
        let _ = deliveries::settle(txn, event.id, Settlement::Stale, now).await?;
        let recheck = match older.owes_recheck() {
            true => owe_recheck(txn, user_id, now).await?,
            false => None,
        };
        return Ok(Applied::Stale { user_id, recheck });
    }
    let identity = Identity {
        patreon_id: before.patreon_id.clone(),
        email: before.email.clone(),
        email_verified: false,
        full_name: before.full_name.clone(),
        image_url: before.avatar_url.clone(),
        membership: Some(snapshot),
    };
    let webhook = CheckTrigger::Webhook;
    let verification = record_state_in(txn, policy, before, &identity, webhook, None).await?;
    let changed = matches!(verification, Verification::Verified { changed: true, .. });
    mark_applied_delivery(txn, user_id, event.received_at).await?;
    let _ = deliveries::settle(txn, event.id, Settlement::Applied { changed }, now).await?;
    // Deliveries can be stale or out of order: a change is confirmed by reading Patreon.
    let recheck = match changed {
        true => owe_recheck(txn, user_id, now).await?,
        false => None,
    };
    Ok(Applied::Applied {
        user_id,
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
    let requested = requests::request(
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
