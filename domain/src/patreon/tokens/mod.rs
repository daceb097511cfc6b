//! Keeping a member's Patreon token pair alive. Patreon refresh tokens are single use, so at most
//! one refresh per user runs at a time across every process: a lease claimed with a
//! compare-and-swap on `token_version`, and the new pair written in one statement.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use entity::user;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::ExprTrait};
use secrecy::SecretString;

use crate::UserId;
use crate::infra::crypto::{TokenCipher, token_aad};
use crate::members::users::{ACCESS_TOKEN_COLUMN, REFRESH_TOKEN_COLUMN, encrypt_tokens};
use crate::patreon::PatreonClient;
use crate::{Error, Result, auth::sessions};

mod row;
use row::{StoredPair, claim_lease, let_go_if_ours, release_lease, store_refreshed, write_pair};

/// Longer than the Patreon HTTP timeout, so a lease outlives the call it guards.
const LEASE: Duration = Duration::seconds(60);
const WAIT_STEP: StdDuration = StdDuration::from_millis(100);

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token is good for longer than asked; nothing was done.
    StillValid,
    /// This call refreshed the pair.
    Refreshed,
    /// Another process refreshed it while this one waited.
    RefreshedElsewhere,
}

/// What happened to the member's Patreon pair when their session was renewed.
#[derive(Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Valid for longer than asked, refreshed now, or nothing to refresh.
    Fresh,
    /// Patreon could not be reached; the refresh waits for a later call.
    Postponed,
}

/// Refreshes the member's Patreon pair if it expires within `within`, as part of renewing their
/// session. A transient Patreon failure postpones the refresh: an outage never signs a member
/// out. A dead link is `Error::NeedsRelogin` (their sessions have then ended).
pub async fn keep_alive(
    db: &impl ConnectionTrait,
    patreon: &PatreonClient,
    cipher: &TokenCipher,
    u: &user::Model,
    within: Duration,
) -> Result<KeepAlive> {
    if u.needs_relogin || u.refresh_token.is_none() {
        // Nothing to refresh (e.g. a member imported without Patreon tokens).
        return Ok(KeepAlive::Fresh);
    }
    match refresh_if_expiring(db, patreon, cipher, u.id, within).await {
        Ok(_) => Ok(KeepAlive::Fresh),
        Err(Error::Patreon(e)) if e.is_transient() => {
            tracing::warn!(
                user_id = i64::from(u.id),
                reason = e.kind(),
                "Patreon token refresh postponed"
            );
            Ok(KeepAlive::Postponed)
        }
        Err(e) => Err(e),
    }
}

/// Decrypts the stored access token of `u`.
pub fn access_token(cipher: &TokenCipher, u: &user::Model) -> Result<SecretString> {
    let stored = u.access_token.as_deref().ok_or(Error::NeedsRelogin)?;
    Ok(cipher.decrypt(stored, &token_aad(&u.patreon_id, ACCESS_TOKEN_COLUMN))?)
}

async fn load(db: &impl ConnectionTrait, user_id: UserId) -> Result<user::Model> {
    user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or(Error::NeedsRelogin)
}

/// Refreshes the user's Patreon pair if it expires within `within`. Concurrent callers for the
/// same user wait for the one holding the lease instead of spending the refresh token again.
pub async fn refresh_if_expiring(
    db: &impl ConnectionTrait,
    patreon: &PatreonClient,
    cipher: &TokenCipher,
    user_id: UserId,
    within: Duration,
) -> Result<RefreshOutcome> {
    let due = |u: &user::Model| {
        u.token_expires_at
            .is_none_or(|at| at <= Utc::now() + within)
    };
    refresh_while(db, patreon, cipher, user_id, due).await
}

/// Refreshes the pair Patreon just refused (401), unless it changed since `seen` was read: then
/// another process already refreshed it and the caller should retry with the new token.
pub async fn refresh_refused(
    db: &impl ConnectionTrait,
    patreon: &PatreonClient,
    cipher: &TokenCipher,
    seen: &user::Model,
) -> Result<RefreshOutcome> {
    let unchanged = |u: &user::Model| u.token_version == seen.token_version;
    refresh_while(db, patreon, cipher, seen.id, unchanged).await
}

/// Refreshes while `due` holds for the stored row, one process at a time.
async fn refresh_while(
    db: &impl ConnectionTrait,
    patreon: &PatreonClient,
    cipher: &TokenCipher,
    user_id: UserId,
    due: impl Fn(&user::Model) -> bool,
) -> Result<RefreshOutcome> {
    let mut waited = false;
    let deadline = Utc::now() + LEASE;
    loop {
        let now = Utc::now();
        let u = load(db, user_id).await?;
        if u.needs_relogin || u.refresh_token.is_none() {
            return Err(Error::NeedsRelogin);
        }
        if !due(&u) {
            return Ok(if waited {
                RefreshOutcome::RefreshedElsewhere
            } else {
                RefreshOutcome::StillValid
            });
        }
        // Microseconds: the value is the claim's identity and must survive storage unchanged.
        let lease_until = (now + LEASE).trunc_subsecs(6);
        match claim_lease(db, &u, now, lease_until).await {
            Ok(true) => {
                return refresh_with_lease(db, patreon, cipher, &u, lease_until)
                    .await
                    .map(|()| RefreshOutcome::Refreshed);
            }
            Ok(false) => {}
            Err(e) => {
                // The claim may have been written and only its answer lost (the database went
                // away mid-statement): let go of it if it is ours, or no refresh can run until
                // it expires.
                let_go_if_ours(db, &u, lease_until).await;
                return Err(e);
            }
        }
        if now > deadline {
            return Err(Error::Patreon(crate::patreon::PatreonError::Timeout));
        }
        waited = true;
        tokio::time::sleep(WAIT_STEP).await;
    }
}

async fn refresh_with_lease(
    db: &impl ConnectionTrait,
    patreon: &PatreonClient,
    cipher: &TokenCipher,
    u: &user::Model,
    lease_until: DateTime<Utc>,
) -> Result<()> {
    let stored = u.refresh_token.as_deref().ok_or(Error::NeedsRelogin)?;
    let refresh_token =
        match cipher.decrypt(stored, &token_aad(&u.patreon_id, REFRESH_TOKEN_COLUMN)) {
            Ok(token) => token,
            Err(e) => {
                release_lease(db, u, lease_until).await?;
                return Err(e.into());
            }
        };
    let refreshed = patreon.refresh(&refresh_token).await;
    let outcome = match &refreshed {
        Ok(_) => "ok",
        Err(e) if e.is_dead_link() => "dead_link",
        Err(e) if e.is_transient() => "transient",
        Err(_) => "error",
    };
    crate::infra::metrics::metrics()
        .token_refreshes
        .get_or_create(&crate::infra::metrics::OutcomeLabels { outcome })
        .inc();
    match refreshed {
        Ok(grant) => {
            let now = Utc::now();
            let (access, refresh) = encrypt_tokens(
                cipher,
                &u.patreon_id,
                &grant.access_token,
                &grant.refresh_token,
            )?;
            let expires_at = now + Duration::from_std(grant.expires_in).unwrap_or(Duration::zero());
            // One statement: the pair, its expiry and the version move together or not at all.
            let pair = StoredPair {
                access: Some(access),
                refresh: Some(refresh),
                expires_at: Some(expires_at),
            };
            store_refreshed(db, u, pair, lease_until).await?;
            tracing::info!(user_id = i64::from(u.id), "Patreon token refreshed");
            Ok(())
        }
        Err(e) if e.is_dead_link() => {
            mark_link_dead(db, u).await?;
            tracing::warn!(
                user_id = i64::from(u.id),
                reason = e.kind(),
                "Patreon link dead; sessions ended"
            );
            Err(Error::NeedsRelogin)
        }
        Err(e) => {
            release_lease(db, u, lease_until).await?;
            Err(e.into())
        }
    }
}

/// Patreon will not take this refresh token again: forget the pair, flag the user, end their
/// sessions (the app may have been revoked at Patreon). Never retried.
pub(crate) async fn mark_link_dead(db: &impl ConnectionTrait, u: &user::Model) -> Result<()> {
    let now = Utc::now();
    let forgotten = StoredPair {
        access: None,
        refresh: None,
        expires_at: None,
    };
    write_pair(db, u, forgotten, true).await?;
    sessions::revoke_all_for_user(db, u.id, now).await?;
    Ok(())
}

/// Members whose pair expires within `within` and can still be refreshed (no refresh under way),
/// at most `limit`, soonest first: what the reconciler turns into *refresh token* jobs.
pub async fn expiring(
    db: &impl ConnectionTrait,
    within: Duration,
    limit: u64,
) -> Result<Vec<UserId>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let now = Utc::now();
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .filter(user::Column::NeedsRelogin.eq(false))
        .filter(user::Column::RefreshToken.is_not_null())
        .filter(user::Column::TokenExpiresAt.lt(now + within))
        .filter(
            user::Column::TokenRefreshLeaseUntil
                .is_null()
                .or(user::Column::TokenRefreshLeaseUntil.lt(now)),
        )
        .order_by_asc(user::Column::TokenExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}
