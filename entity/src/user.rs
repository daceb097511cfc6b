use sea_orm::entity::prelude::*;

use crate::ids::{PatreonUserId, UserId};

/// A Patreon account that has signed in at least once. Identified by `patreon_id`, never by email.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: UserId,
    #[sea_orm(unique)]
    pub patreon_id: PatreonUserId,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    /// Patreon's member id (UUID) for our campaign, when the user has one.
    pub patreon_member_id: Option<String>,
    pub patron_status: Option<String>,
    pub last_charge_status: Option<String>,
    pub last_charge_date: Option<DateTimeUtc>,
    /// Patreon's `pledge_relationship_start`, as last stored (by a check or a delivery).
    pub pledge_started_at: Option<DateTimeUtc>,
    pub entitled_amount_cents: i64,
    pub tier_title: Option<String>,
    /// The outcome of the membership rule at the last successful check.
    pub membership_active: bool,
    pub last_checked: Option<DateTimeUtc>,
    /// AES-256-GCM ciphertext (`v1:<kid>:<nonce>:<ct>`), never plaintext.
    pub access_token: Option<String>,
    /// AES-256-GCM ciphertext, never plaintext. Single use at Patreon.
    pub refresh_token: Option<String>,
    pub token_expires_at: Option<DateTimeUtc>,
    /// Bumped on every token write: the compare-and-swap guard for single-use refresh tokens.
    pub token_version: i64,
    /// While set in the future, one process is refreshing this user's Patreon token.
    pub token_refresh_lease_until: Option<DateTimeUtc>,
    /// The Patreon link is dead (revoked or `invalid_grant`): a fresh sign-in is needed.
    pub needs_relogin: bool,
    /// The admin role as granted in the database (`worker admins grant`); members listed in
    /// `ADMIN_PATREON_IDS` are admins whatever this says (`domain::auth::admins::is_admin`).
    pub is_admin: bool,
    /// When `worker import-profiles` first created this row from the old app's profiles. Until a
    /// first successful check, its imported paid flag counts from this time ([`Self::last_checked`]
    /// stays unset: nothing here came from Patreon).
    pub imported_at: Option<DateTimeUtc>,
    /// The old app's team flag, kept for admins to see. It grants nothing: roles come from
    /// `ADMIN_PATREON_IDS` and `TEAM_PATREON_IDS`.
    pub imported_team: bool,
    /// When the last webhook delivery applied to this member was first received: an earlier
    /// one that says nothing newer is older than the state it would overwrite.
    pub delivery_received_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub sessions: HasMany<super::session::Entity>,
    #[sea_orm(has_many)]
    pub membership_checks: HasMany<super::membership_check::Entity>,
    #[sea_orm(has_many, relation_enum = "JobRequests", from = "id", to = "user_id")]
    pub job_requests: HasMany<super::job_request::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
