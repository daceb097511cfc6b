//! Recorded webhook deliveries (`webhook_events`): `pending` until applied, or `ignored`
//! (another campaign), or `waiting` for the member's first sign-in. The transitions are listed
//! in the [ledger](super).

use chrono::{DateTime, Utc};
use entity::states::{DeliveryOutcome, DeliveryStatus};
use entity::webhook_event;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, OnConflict},
};

use super::Transition;
use crate::{PatreonUserId, Result, WebhookEventId};

/// A verified delivery, as it is recorded.
pub struct NewDelivery {
    pub body_sha256: String,
    pub trigger: String,
    pub member_id: Option<String>,
    pub patreon_user_id: Option<PatreonUserId>,
    pub campaign_id: Option<String>,
    pub body: String,
    /// For our campaign: to be applied. Otherwise recorded as `ignored`.
    pub ours: bool,
    pub received_at: DateTime<Utc>,
}

/// **record**: inserts the delivery once per body, `pending` for our campaign and `ignored`
/// otherwise. Returns its id, or `None` when the same body was recorded before.
pub async fn record(db: &impl ConnectionTrait, d: NewDelivery) -> Result<Option<WebhookEventId>> {
    let (status, outcome) = match d.ours {
        true => (DeliveryStatus::Pending, None),
        false => (
            DeliveryStatus::Ignored,
            Some(DeliveryOutcome::OtherCampaign),
        ),
    };
    let row = webhook_event::ActiveModel {
        body_sha256: Set(d.body_sha256),
        trigger: Set(d.trigger),
        member_id: Set(d.member_id),
        patreon_user_id: Set(d.patreon_user_id),
        campaign_id: Set(d.campaign_id),
        body: Set(d.body),
        status: Set(status),
        outcome: Set(outcome),
        received_at: Set(d.received_at),
        processed_at: Set((!d.ours).then_some(d.received_at)),
        ..Default::default()
    };
    let inserted = webhook_event::Entity::insert(row)
        .on_conflict(
            OnConflict::column(webhook_event::Column::BodySha256)
                .do_nothing()
                .to_owned(),
        )
        .exec_with_returning_keys(db)
        .await?;
    Ok(inserted.first().copied())
}

/// How a pending delivery was dealt with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The member's state follows it (`applied`, outcome `changed` or `unchanged`).
    Applied { changed: bool },
    /// Older than the stored state: changed nothing (`stale`).
    Stale,
    /// Not a member document after all (`failed`).
    Malformed,
    /// No such member yet: kept for their first sign-in (`waiting`).
    Waiting,
}

impl Settlement {
    fn stored(self) -> (DeliveryStatus, DeliveryOutcome) {
        match self {
            Self::Applied { changed: true } => (DeliveryStatus::Applied, DeliveryOutcome::Changed),
            Self::Applied { changed: false } => {
                (DeliveryStatus::Applied, DeliveryOutcome::Unchanged)
            }
            Self::Stale => (DeliveryStatus::Stale, DeliveryOutcome::OlderThanStored),
            Self::Malformed => (DeliveryStatus::Failed, DeliveryOutcome::Malformed),
            Self::Waiting => (DeliveryStatus::Waiting, DeliveryOutcome::UnknownUser),
        }
    }
}

/// **settle**: a `pending` delivery was dealt with. Unmoved when it was not pending.
pub async fn settle(
    db: &impl ConnectionTrait,
    id: WebhookEventId,
    how: Settlement,
    now: DateTime<Utc>,
) -> Result<Transition> {
    let (status, outcome) = how.stored();
    let moved = webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::Status, Expr::value(status))
        .col_expr(webhook_event::Column::Outcome, Expr::value(outcome))
        .col_expr(webhook_event::Column::ProcessedAt, Expr::value(now))
        .filter(webhook_event::Column::Id.eq(id))
        .filter(webhook_event::Column::Status.eq(DeliveryStatus::Pending))
        .exec(db)
        .await?;
    Ok(Transition::from_rows(moved.rows_affected))
}

/// **release_waiting**: deliveries kept for `patreon_id` until they signed in are `pending`
/// again, so they are applied (or found older than the sign-in's own check). Returns their ids,
/// to be pushed.
pub async fn release_waiting(
    db: &impl ConnectionTrait,
    patreon_id: &PatreonUserId,
) -> Result<Vec<WebhookEventId>> {
    let waiting: Vec<WebhookEventId> = webhook_event::Entity::find()
        .select_only()
        .column(webhook_event::Column::Id)
        .filter(webhook_event::Column::PatreonUserId.eq(patreon_id))
        .filter(webhook_event::Column::Status.eq(DeliveryStatus::Waiting))
        .into_tuple()
        .all(db)
        .await?;
    if !waiting.is_empty() {
        webhook_event::Entity::update_many()
            .col_expr(
                webhook_event::Column::Status,
                Expr::value(DeliveryStatus::Pending),
            )
            .filter(webhook_event::Column::Id.is_in(waiting.clone()))
            .filter(webhook_event::Column::Status.eq(DeliveryStatus::Waiting))
            .exec(db)
            .await?;
    }
    Ok(waiting)
}

/// Pending deliveries received more than `lost_after` ago: their job may be lost.
pub async fn stale_pending(
    db: &impl ConnectionTrait,
    lost_after: chrono::Duration,
) -> Result<Vec<WebhookEventId>> {
    Ok(webhook_event::Entity::find()
        .select_only()
        .column(webhook_event::Column::Id)
        .filter(webhook_event::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_event::Column::ReceivedAt.lt(Utc::now() - lost_after))
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?)
}
