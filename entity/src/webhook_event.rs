use sea_orm::entity::prelude::*;

use crate::ids::{PatreonUserId, WebhookEventId};
use crate::states::{DeliveryOutcome, DeliveryStatus};

/// One distinct Patreon webhook delivery and what became of it.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: WebhookEventId,
    /// SHA-256 of the raw body, hex: the same delivery twice is one row.
    #[sea_orm(unique)]
    pub body_sha256: String,
    /// `X-Patreon-Event` as sent. Not signed: a hint for people, never for decisions.
    pub trigger: String,
    pub member_id: Option<String>,
    pub patreon_user_id: Option<PatreonUserId>,
    pub campaign_id: Option<String>,
    /// The body exactly as received (signature verified).
    pub body: String,
    pub status: DeliveryStatus,
    pub outcome: Option<DeliveryOutcome>,
    pub received_at: DateTimeUtc,
    pub processed_at: Option<DateTimeUtc>,
}

impl ActiveModelBehavior for ActiveModel {}
