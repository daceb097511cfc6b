//! The last step of the OAuth dance, once `state` checked out: trade Patreon's code, read who
//! the member is, record them with their membership, and open a session with its handoff code.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::DatabaseConnection;

use crate::Result;
use crate::auth::sessions::{self, NewSession};
use crate::infra::config::Settings;
use crate::members::users;
use crate::patreon::PatreonClient;

/// A finished sign-in: the member as now stored, their new session, and the single-use code a
/// Bearer-mode frontend trades for its tokens.
pub struct SignedIn {
    pub user: user::Model,
    pub session: NewSession,
    pub handoff: String,
}

/// Completes a sign-in with Patreon's authorization `code`. Patreon's failures come back as
/// [`crate::Error::Patreon`], so the caller can tell an outage from a refusal.
pub async fn complete(
    db: &DatabaseConnection,
    patreon: &PatreonClient,
    settings: &Settings,
    code: &str,
    now: DateTime<Utc>,
) -> Result<SignedIn> {
    let grant = patreon.exchange_code(code).await?;
    let identity = patreon.identity(&grant.access_token).await?;
    let user = users::record_sign_in(
        db,
        &settings.token_cipher,
        &settings.membership,
        &identity,
        &grant,
        now,
    )
    .await?;
    let session = sessions::create(db, user.id, settings.jwt.max_session_age, now).await?;
    let handoff = super::issue_handoff(db, &session.session.id, now).await?;
    Ok(SignedIn {
        user,
        session,
        handoff,
    })
}
