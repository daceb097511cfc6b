//! Sign-in sessions: every JWT names one (`sid`), so revoking the row ends all its tokens at once.
//! Each session also has an opaque refresh token (`<session id>.<secret>`, stored hashed) that
//! rotates on every use; replaying the one it replaced after the grace window ends the session.

use chrono::{DateTime, Duration, Utc};
use entity::{session, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use secrecy::{ExposeSecret, SecretString};

use crate::UserId;
use crate::auth::auth_events::{self, AuthEvent};
use crate::{Error, Result, infra::secrets};

/// How long a replaced refresh token is answered as "already renewed" (nothing new is issued):
/// two tabs refreshing at once must not look like token theft.
pub const REFRESH_REUSE_GRACE: Duration = Duration::seconds(60);

pub struct NewSession {
    pub session: session::Model,
    pub refresh_token: SecretString,
}

/// The session a refresh token belongs to (its public prefix), if it is well formed.
pub fn session_id_of(refresh_token: &SecretString) -> Option<&str> {
    let (id, _) = refresh_token.expose_secret().split_once('.')?;
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

fn new_refresh_token(session_id: &str) -> SecretString {
    SecretString::from(format!("{session_id}.{}", secrets::random_token()))
}

/// Starts a sign-in that lasts `lifetime` from `now`, whatever refreshes happen.
pub async fn create(
    db: &impl ConnectionTrait,
    user_id: UserId,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    let id = secrets::random_id();
    let refresh_token = new_refresh_token(&id);
    let model = session::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        created_at: Set(now),
        expires_at: Set(now + lifetime),
        revoked_at: Set(None),
        refresh_token_hash: Set(secrets::hash(refresh_token.expose_secret())),
        previous_refresh_token_hash: Set(None),
        refresh_rotated_at: Set(None),
    };
    let session = session::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    Ok(NewSession {
        session,
        refresh_token,
    })
}

/// A session counts until it is revoked or its absolute lifetime ends.
pub fn is_live(s: &session::Model, now: DateTime<Utc>) -> bool {
    s.revoked_at.is_none() && s.expires_at > now
}

/// The session and its user, if the session is live and belongs to `patreon_id`. One query.
/// `patreon_id` is the token's `sub` claim as the caller read it, hence text.
pub async fn find_live(
    db: &impl ConnectionTrait,
    session_id: &str,
    patreon_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(session::Model, user::Model)>> {
    let found = session::Entity::find_by_id(session_id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(match found {
        Some((s, Some(u))) if is_live(&s, now) && u.patreon_id == patreon_id => Some((s, u)),
        _ => None,
    })
}

pub async fn revoke(db: &impl ConnectionTrait, session_id: &str, now: DateTime<Utc>) -> Result<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    auth_events::publish(db, AuthEvent::Session(session_id.to_owned())).await
}

/// Ends every sign-in of a user (fraud, a dead Patreon link, an admin's "sign out everywhere").
pub async fn revoke_all_for_user(
    db: &impl ConnectionTrait,
    user_id: UserId,
    now: DateTime<Utc>,
) -> Result<u64> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    auth_events::publish(db, AuthEvent::User(user_id)).await?;
    Ok(result.rows_affected)
}

pub struct Renewed {
    pub session: session::Model,
    pub user: user::Model,
    /// The rotated refresh token, or `None` when a sibling request already rotated it (grace):
    /// then nothing new may be issued, the sibling's credentials are the current ones.
    pub refresh_token: Option<SecretString>,
}

/// Trades a refresh token for a rotated one. The token it replaced, inside
/// [`REFRESH_REUSE_GRACE`], is answered without rotating; later, it is treated as stolen and the
/// whole session ends. Any other value is refused and changes nothing: the session id is public
/// (every JWT names it), so a guess must not be able to sign the member out.
pub async fn rotate_refresh_token(
    db: &impl ConnectionTrait,
    presented: &SecretString,
    now: DateTime<Utc>,
) -> Result<Renewed> {
    let presented = presented.expose_secret();
    let session_id = presented
        .split_once('.')
        .map(|(id, _)| id)
        .filter(|id| id.len() == 32);
    let session_id = session_id.ok_or(Error::InvalidRefreshToken)?;
    let Some((session, Some(user))) = session::Entity::find_by_id(session_id)
        .find_also_related(user::Entity)
        .one(db)
        .await?
    else {
        return Err(Error::InvalidRefreshToken);
    };
    if !is_live(&session, now) {
        return Err(Error::SessionEnded);
    }
    let presented_hash = secrets::hash(presented);
    if !secrets::constant_time_eq(&presented_hash, &session.refresh_token_hash) {
        return answer_replaced(db, session, user, &presented_hash, now).await;
    }
    let next = new_refresh_token(&session.id);
    let swapped = swap_refresh_token(db, &session.id, &presented_hash, &next, now).await?;
    // When a concurrent request rotated first, this one is the benign race of two tabs.
    Ok(Renewed {
        session,
        user,
        refresh_token: swapped.then_some(next),
    })
}

/// Replaces the session's refresh token hash with `next`'s if it is still `presented_hash`;
/// false when another request rotated it first.
async fn swap_refresh_token(
    db: &impl ConnectionTrait,
    session_id: &str,
    presented_hash: &str,
    next: &SecretString,
    now: DateTime<Utc>,
) -> Result<bool> {
    let swapped = session::Entity::update_many()
        .col_expr(
            session::Column::RefreshTokenHash,
            Expr::value(secrets::hash(next.expose_secret())),
        )
        .col_expr(
            session::Column::PreviousRefreshTokenHash,
            Expr::value(presented_hash.to_owned()),
        )
        .col_expr(session::Column::RefreshRotatedAt, Expr::value(now))
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::RefreshTokenHash.eq(presented_hash))
        .exec(db)
        .await?;
    Ok(swapped.rows_affected == 1)
}

/// A refresh token that is not the session's current one: the one it replaced is answered
/// without rotating inside the grace, and ends the session after it; anything else is refused.
async fn answer_replaced(
    db: &impl ConnectionTrait,
    session: session::Model,
    user: user::Model,
    presented_hash: &str,
    now: DateTime<Utc>,
) -> Result<Renewed> {
    let is_previous = session
        .previous_refresh_token_hash
        .as_deref()
        .is_some_and(|h| secrets::constant_time_eq(h, presented_hash));
    let within_grace = session
        .refresh_rotated_at
        .is_some_and(|at| now - at <= REFRESH_REUSE_GRACE);
    if !is_previous {
        tracing::info!(
            user_id = i64::from(user.id),
            "unknown refresh token for a live session"
        );
        return Err(Error::InvalidRefreshToken);
    }
    if within_grace {
        return Ok(Renewed {
            session,
            user,
            refresh_token: None,
        });
    }
    // The genuine replaced token, replayed late: assume theft and end the whole family.
    revoke(db, &session.id, now).await?;
    tracing::warn!(
        user_id = i64::from(user.id),
        "refresh token reuse detected; session revoked"
    );
    Err(Error::InvalidRefreshToken)
}

/// Starts a new refresh chain for a live session and returns its token, for a Bearer client
/// that redeemed the sign-in's handoff code. The browser's refresh cookie of that sign-in stops
/// working (refused, not counted as theft: it was not stolen, it was handed over).
pub async fn restart_refresh_chain(
    db: &impl ConnectionTrait,
    session_id: &str,
) -> Result<SecretString> {
    let next = new_refresh_token(session_id);
    session::Entity::update_many()
        .col_expr(
            session::Column::RefreshTokenHash,
            Expr::value(secrets::hash(next.expose_secret())),
        )
        .col_expr(
            session::Column::PreviousRefreshTokenHash,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            session::Column::RefreshRotatedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(next)
}

/// Removes sessions that ended more than a day ago.
pub async fn purge_ended(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let cutoff = now - Duration::days(1);
    let result = session::Entity::delete_many()
        .filter(
            session::Column::ExpiresAt
                .lt(cutoff)
                .or(session::Column::RevokedAt.lt(cutoff)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Ends the session named by a refresh token, if the token is its current or just-replaced one
/// (logout with an expired JWT).
pub async fn revoke_if_refresh_matches(
    db: &impl ConnectionTrait,
    presented: &SecretString,
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(session_id) = session_id_of(presented) else {
        return Ok(false);
    };
    let Some(s) = session::Entity::find_by_id(session_id).one(db).await? else {
        return Ok(false);
    };
    let hash = secrets::hash(presented.expose_secret());
    let matches = secrets::constant_time_eq(&hash, &s.refresh_token_hash)
        || s.previous_refresh_token_hash
            .as_deref()
            .is_some_and(|h| secrets::constant_time_eq(h, &hash));
    if matches {
        revoke(db, &s.id, now).await?;
    }
    Ok(matches)
}
