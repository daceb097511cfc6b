use std::sync::Arc;

use domain::{auth::jwt::JwtKeys, infra::config::Settings, patreon::PatreonClient};
use sea_orm::DatabaseConnection;

use crate::{
    auth_cache::AuthCache,
    http::{headers::AllowedMethods, rate_limit::ClientRateLimiter},
};

/// Everything a handler needs, built once at start and shared (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Present when `REDIS_URL` is set.
    pub redis: Option<redis::aio::ConnectionManager>,
    /// Where background jobs are pushed (Redis, or the embedded SQLite queue).
    pub jobs: domain::work::jobs::JobQueue,
    pub patreon: PatreonClient,
    pub jwt: Arc<JwtKeys>,
    pub settings: Arc<Settings>,
    pub rate_limiter: Arc<ClientRateLimiter>,
    pub auth_cache: Arc<AuthCache>,
    pub allowed_methods: Arc<AllowedMethods>,
}
