//! Who someone is: the OAuth sign-in steps, sessions and their JWTs, the admin role, and
//! the signal that tells every process a session or user changed.

pub mod admins;
pub mod auth_events;
pub mod jwt;
pub mod sessions;
pub mod sign_in;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use crate::Result;

/// Removes everything of finished sign-ins: expired states and handoff codes, and sessions
/// that ended more than a day ago. Called periodically by the api.
pub async fn purge_expired_sign_ins(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    Ok(sign_in::purge_expired(db, now).await? + sessions::purge_ended(db, now).await?)
}
