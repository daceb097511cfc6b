use sea_orm::entity::prelude::*;

use crate::ids::UserId;
use crate::states::{CheckOutcome, CheckTrigger};

/// One membership check of one user: why it ran, what it found, what changed, what failed.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "membership_checks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: UserId,
    pub checked_at: DateTimeUtc,
    pub trigger: CheckTrigger,
    pub outcome: CheckOutcome,
    pub old_active: Option<bool>,
    pub new_active: Option<bool>,
    pub old_patron_status: Option<String>,
    pub new_patron_status: Option<String>,
    /// Why the membership rule decided as it did (e.g. `active_entitled`, `declined_in_grace`).
    pub access_reason: Option<String>,
    /// What went wrong, without secrets (e.g. `patreon_unavailable`, `needs_relogin`).
    pub error: Option<String>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
