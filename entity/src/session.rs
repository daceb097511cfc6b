use sea_orm::entity::prelude::*;

use crate::ids::UserId;

/// One sign-in. Every JWT carries its id (`sid`); revoking the row ends all of them at once.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: UserId,
    pub created_at: DateTimeUtc,
    /// Absolute end of the sign-in (`JWT_EXPIRATION_HOURS` after it began); refreshes never move it.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// SHA-256 (hex) of the current opaque refresh token.
    pub refresh_token_hash: String,
    /// SHA-256 of the token it replaced, honoured briefly so two tabs refreshing at once don't collide.
    pub previous_refresh_token_hash: Option<String>,
    pub refresh_rotated_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
