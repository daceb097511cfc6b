//! Typed configuration from the environment (and an optional `.env`), validated once at start.
//! A missing or bad value is one [`ConfigError`] naming the variable; secrets are never echoed.

use std::{collections::HashSet, time::Duration};

use secrecy::SecretString;
use url::Url;

use crate::auth::jwt::JwtSettings;
use crate::infra::crypto::TokenCipher;
use crate::members::membership::MembershipPolicy;
use vars::{Vars, problem};

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// Everything about our OAuth client and campaign at Patreon.
#[derive(Clone)]
pub struct PatreonSettings {
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: Url,
    pub campaign_id: String,
    pub base_url: Url,
    /// Where browsers are sent to consent, when not `{base_url}/oauth2/authorize`: a Patreon
    /// mock reached by the api under one name and by browsers under another (docker compose).
    pub authorize_url: Option<Url>,
    pub scopes: String,
    pub timeout: Duration,
    pub creator_access_token: Option<SecretString>,
    pub webhook_secret: Option<SecretString>,
    /// Calls to Patreon allowed per 2 s for this client (Patreon's limit is 100).
    pub requests_per_2s: u32,
    /// Calls per token per minute (Patreon allows 100), across every process sharing Redis.
    pub requests_per_token_per_min: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

#[derive(Clone, Debug)]
pub struct CookieSettings {
    pub domain: Option<String>,
    pub secure: bool,
    pub same_site: SameSite,
}

pub struct Settings {
    pub database_url: String,
    pub database_max_connections: u32,
    pub redis_url: Option<SecretString>,
    /// Namespace of every Redis key this deployment writes.
    pub redis_key_prefix: String,
    /// The embedded job queue's SQLite file, used when `REDIS_URL` is unset.
    pub queue_sqlite_url: String,
    /// How long the queue keeps finished (done or dead) jobs before the worker trims them.
    pub queue_retention: chrono::Duration,
    /// When sweeps re-verify every member.
    pub verify_schedule: crate::work::schedule::SweepSchedule,
    pub jwt: JwtSettings,
    pub token_cipher: TokenCipher,
    pub patreon: PatreonSettings,
    pub frontend_url: Url,
    /// Origins allowed to call the API with credentials: `FRONTEND_URL`'s plus `CORS_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    pub cookie: CookieSettings,
    /// The bootstrap admins; `domain::auth::admins::is_admin` also honours the database role.
    pub admin_patreon_ids: HashSet<String>,
    pub team_patreon_ids: HashSet<String>,
    pub bind_address: String,
    pub port: u16,
    pub auto_migrate: bool,
    pub api_docs: bool,
    /// Whose `X-Forwarded-For` entries name the client (rate limits, logs).
    pub trusted_proxies: TrustedProxies,
    pub auth_rate_limit_per_minute: u32,
    /// Deliveries per minute per address on the webhook, apart from the sign-in budget.
    pub webhook_rate_limit_per_minute: u32,
    /// How long a looked-up session may be served from memory (0 disables the cache).
    pub auth_cache_ttl: Duration,
    pub membership: MembershipPolicy,
    pub stale_after: chrono::Duration,
    /// A queued job with no news for this long is presumed lost by the queue and pushed again.
    pub job_lost_after: chrono::Duration,
    /// When set, `/metrics` asks for `Authorization: Bearer <this>`.
    pub metrics_token: Option<SecretString>,
    /// The worker's HTTP port for `/metrics` and `/healthz` (0 = none).
    pub worker_http_port: u16,
    /// Jobs one worker process runs at once. Patreon's latency, not our CPU, is what they wait
    /// on; the shared budget keeps the total rate in line however many run.
    pub worker_concurrency: usize,
    /// How often an idle worker asks the queue for jobs: the bound on a new job's wait.
    pub queue_poll: Duration,
}

/// `scheme://host[:port]` of a URL, as browsers send it in `Origin`.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl Settings {
    /// Loads `.env` if present, then reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one must not be silently half-read.
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(_) => return Err(problem(".env", "could not be parsed")),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup: &dyn Fn(&str) -> Option<String> = &lookup;
        let v = Vars(lookup);
        let jwt = sections::jwt(&v)?;
        let token_cipher = sections::token_cipher(&v)?;
        let patreon = sections::patreon(&v)?;
        let frontend_url = v.url("FRONTEND_URL", v.required("FRONTEND_URL")?)?;
        let allowed_origins = sections::allowed_origins(&v, &frontend_url)?;
        let cookie = sections::cookie(&v)?;
        let grace_days: i64 = v.parsed("GRACE_PERIOD_DAYS", 7, "a whole number of days")?;
        let stale_days: i64 = v.parsed("STALE_AFTER_DAYS", 35, "a whole number of days")?;
        let queue_poll = sections::queue_poll(&v)?;
        let database_url = v
            .optional("DATABASE_URL")
            .unwrap_or_else(|| crate::infra::db::DEFAULT_SQLITE_URL.into());
        Ok(Self {
            queue_sqlite_url: v
                .optional("QUEUE_SQLITE_URL")
                .unwrap_or_else(|| queue_file::default_queue_sqlite_url(&database_url)),
            queue_retention: chrono::Duration::hours(
                v.parsed::<u32>("QUEUE_RETENTION_HOURS", 24, "a whole number of hours")?
                    .into(),
            ),
            database_url,
            // Small pools serve best on small machines: the database does the work, not waiting.
            database_max_connections: v.parsed("DATABASE_MAX_CONNECTIONS", 10, "a whole number")?,
            redis_url: v.optional("REDIS_URL").map(SecretString::from),
            redis_key_prefix: v
                .optional("REDIS_KEY_PREFIX")
                .unwrap_or_else(|| "patreon-gate".into()),
            verify_schedule: crate::work::schedule::SweepSchedule::parse(
                &v.optional("VERIFY_SCHEDULE")
                    .unwrap_or_else(|| crate::work::schedule::DEFAULT_VERIFY_SCHEDULE.into()),
            )
            .map_err(|e| {
                problem(
                    "VERIFY_SCHEDULE",
                    format!("is not a cron expression with seconds first ({e})"),
                )
            })?,
            jwt,
            token_cipher,
            patreon,
            frontend_url,
            allowed_origins,
            cookie,
            admin_patreon_ids: v.id_list("ADMIN_PATREON_IDS")?,
            team_patreon_ids: v.id_list("TEAM_PATREON_IDS")?,
            bind_address: v
                .optional("BIND_ADDRESS")
                .unwrap_or_else(|| "0.0.0.0".into()),
            port: v.parsed("PORT", 8080, "a TCP port number")?,
            auto_migrate: v.flag("AUTO_MIGRATE", true)?,
            api_docs: v.flag("API_DOCS", false)?,
            trusted_proxies: TrustedProxies::parse(
                v.optional("TRUSTED_PROXY_HOPS"),
                v.optional("TRUSTED_PROXIES"),
                v.optional("TRUST_PROXY_HEADERS")
                    .map(|_| v.flag("TRUST_PROXY_HEADERS", false))
                    .transpose()?,
            )?,
            auth_rate_limit_per_minute: v.parsed(
                "AUTH_RATE_LIMIT_PER_MINUTE",
                30,
                "a whole number",
            )?,
            // Patreon sends a billing day's deliveries from a few addresses, and three refused
            // in a row pause the webhook: the limit only stops floods (forged ones fail the
            // signature check before any work).
            webhook_rate_limit_per_minute: v.parsed(
                "WEBHOOK_RATE_LIMIT_PER_MINUTE",
                6000,
                "a whole number",
            )?,
            auth_cache_ttl: Duration::from_millis(v.parsed(
                "AUTH_CACHE_TTL_MS",
                1000,
                "a whole number of milliseconds",
            )?),
            membership: MembershipPolicy {
                grace_period: chrono::Duration::days(grace_days),
                min_entitled_cents: v.parsed("MIN_ENTITLED_CENTS", 1, "a whole number of cents")?,
                allow_free_trials: v.flag("ALLOW_FREE_TRIALS", true)?,
            },
            stale_after: chrono::Duration::days(stale_days),
            job_lost_after: chrono::Duration::seconds(
                v.parsed::<i64>("JOB_LOST_AFTER_SECS", 600, "a whole number of seconds")?
                    .max(1),
            ),
            metrics_token: v.optional("METRICS_TOKEN").map(SecretString::from),
            worker_http_port: v.parsed("WORKER_HTTP_PORT", 9091, "a TCP port number")?,
            worker_concurrency: v
                .parsed::<usize>("WORKER_CONCURRENCY", 16, "a whole number")?
                .clamp(1, 256),
            queue_poll,
        })
    }
}

mod proxies;
pub mod queue_file;
mod sections;
mod vars;
pub use proxies::TrustedProxies;

#[cfg(test)]
mod tests;
