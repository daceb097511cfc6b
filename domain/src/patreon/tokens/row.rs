//! The token columns of a member's row: the refresh lease, claimed and let go by
//! compare-and-swap on `token_version`, and the pair written in one statement.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, UpdateMany, sea_query::Expr,
};

use crate::Result;

/// Claims the refresh lease of the row as read in `u`, if nobody holds it (or theirs expired).
pub(super) async fn claim_lease(
    db: &impl ConnectionTrait,
    u: &user::Model,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool> {
    let claimed = user::Entity::update_many()
        .col_expr(
            user::Column::TokenRefreshLeaseUntil,
            Expr::value(lease_until),
        )
        .filter(user::Column::Id.eq(u.id))
        .filter(user::Column::TokenVersion.eq(u.token_version))
        .filter(
            user::Column::TokenRefreshLeaseUntil
                .is_null()
                .or(user::Column::TokenRefreshLeaseUntil.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// The statement clearing the refresh lease claimed until `lease_until` on the row as read in
/// `u`: a no-op once the lease expired and someone else claimed it.
fn clear_lease(u: &user::Model, lease_until: DateTime<Utc>) -> UpdateMany<user::Entity> {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenRefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(user::Column::Id.eq(u.id))
        .filter(user::Column::TokenVersion.eq(u.token_version))
        .filter(user::Column::TokenRefreshLeaseUntil.eq(lease_until))
}

/// Clears the refresh lease if it is still ours, retrying with backoff while the database is
/// unreachable, until that lease would have expired anyway.
pub(super) async fn let_go_if_ours(
    db: &impl ConnectionTrait,
    u: &user::Model,
    lease_until: DateTime<Utc>,
) {
    // Left set, it expires at `lease_until`: giving up then loses nothing.
    let _ =
        crate::infra::db_retry::until(lease_until, || clear_lease(u, lease_until).exec(db)).await;
}

/// Clears our refresh lease after a refresh that changed nothing (the pair is unchanged).
pub(super) async fn release_lease(
    db: &impl ConnectionTrait,
    u: &user::Model,
    lease_until: DateTime<Utc>,
) -> Result<()> {
    clear_lease(u, lease_until).exec(db).await?;
    Ok(())
}

/// Stores the pair Patreon just issued. Patreon has spent the old refresh token, so this pair
/// is the only one that works: while the lease is ours, a database that went away is waited for
/// (with backoff) rather than the pair lost and the member's link with it. A write whose answer
/// was lost is harmless to repeat: the version check makes it a no-op.
pub(super) async fn store_refreshed(
    db: &impl ConnectionTrait,
    u: &user::Model,
    pair: StoredPair,
    lease_until: DateTime<Utc>,
) -> Result<()> {
    let stored =
        crate::infra::db_retry::until(lease_until, || write_pair(db, u, pair.clone(), false)).await;
    if let Err(e) = &stored {
        tracing::error!(user_id = i64::from(u.id), error = %e, "refreshed Patreon token lost: cannot store it");
    }
    stored
}

/// A token pair as stored: ciphertexts and the access token's expiry.
#[derive(Clone)]
pub(super) struct StoredPair {
    pub access: Option<String>,
    pub refresh: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Writes the pair, its expiry and the new version in one statement, releasing the lease; a
/// no-op if someone else changed the row since `u` was read.
pub(super) async fn write_pair(
    db: &impl ConnectionTrait,
    u: &user::Model,
    pair: StoredPair,
    needs_relogin: bool,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::AccessToken, Expr::value(pair.access))
        .col_expr(user::Column::RefreshToken, Expr::value(pair.refresh))
        .col_expr(user::Column::TokenExpiresAt, Expr::value(pair.expires_at))
        .col_expr(user::Column::NeedsRelogin, Expr::value(needs_relogin))
        .col_expr(user::Column::TokenVersion, Expr::value(u.token_version + 1))
        .col_expr(
            user::Column::TokenRefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(u.id))
        .filter(user::Column::TokenVersion.eq(u.token_version))
        .exec(db)
        .await?;
    Ok(())
}
