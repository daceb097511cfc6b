//! Patreon's OAuth and API v2, as this service uses them.

pub mod budget;
mod client;
mod error;
pub mod key_rotation;
pub mod resources;
pub mod tokens;
mod webhooks_api;

pub use client::{PatreonClient, TokenGrant};
pub use error::PatreonError;
pub use resources::Identity;
pub use webhooks_api::{MEMBER_TRIGGERS, Webhook};

/// The Patreon client of a process: its calls counted against the deployment-wide budget, in
/// Redis when there is one, else in the database `db` (every process of a deployment shares
/// it), else (a command without a database) against this process's own.
pub fn client_for(
    settings: &crate::infra::config::PatreonSettings,
    redis: Option<&redis::aio::ConnectionManager>,
    redis_key_prefix: &str,
    db: Option<&sea_orm::DatabaseConnection>,
) -> Result<PatreonClient, PatreonError> {
    let client = PatreonClient::new(settings.clone())?;
    let (per_client, per_token) = budget::quotas(settings);
    Ok(match (redis, db) {
        (Some(conn), _) => client.with_budget(budget::PatreonBudget::shared(
            per_client,
            per_token,
            conn.clone(),
            format!("{redis_key_prefix}:patreon:budget"),
        )),
        (None, Some(db)) => client.with_budget(budget::PatreonBudget::database(
            per_client,
            per_token,
            db.clone(),
        )),
        (None, None) => client,
    })
}

#[cfg(test)]
mod client_tests;
