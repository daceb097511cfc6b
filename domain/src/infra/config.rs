//! Typed configuration from the environment (and an optional `.env`), validated once at start.
//! A missing or bad value is one [`ConfigError`] naming the variable; secrets are never echoed.

use std::{collections::HashSet, time::Duration};

use secrecy::SecretString;
use url::Url;

use crate::auth::jwt::{JwtSecret, JwtSettings};
use crate::infra::crypto::{KeyId, TokenCipher};
use crate::members::membership::MembershipPolicy;

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn problem(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
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

/// Reads variables through `lookup` so tests can configure without touching the process environment.
struct Vars<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Vars<F> {
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| problem(name, "is required but not set"))
    }

    fn secret(&self, name: &'static str) -> Result<SecretString, ConfigError> {
        self.required(name).map(SecretString::from)
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| problem(name, format!("must be {what}"))),
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(_) => Err(problem(name, "must be true or false")),
        }
    }

    fn url(&self, name: &'static str, raw: String) -> Result<Url, ConfigError> {
        let url = Url::parse(&raw).map_err(|_| problem(name, "must be an absolute http(s) URL"))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(url),
            _ => Err(problem(name, "must be an absolute http(s) URL")),
        }
    }

    fn id_list(&self, name: &'static str) -> Result<HashSet<String>, ConfigError> {
        let raw = self.optional(name).unwrap_or_default();
        raw.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| match crate::patreon::resources::is_numeric_id(id) {
                true => Ok(id.to_owned()),
                false => Err(problem(
                    name,
                    "must be comma-separated numeric Patreon user ids",
                )),
            })
            .collect()
    }
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
        let v = Vars(lookup);
        let jwt_secret = JwtSecret::parse(v.secret("JWT_SECRET")?)
            .map_err(|e| problem("JWT_SECRET", e.to_string()))?;
        let session_hours: i64 =
            v.parsed("JWT_EXPIRATION_HOURS", 168, "a whole number of hours")?;
        let access_minutes: i64 =
            v.parsed("ACCESS_TOKEN_MINUTES", 15, "a whole number of minutes")?;
        if !(1..=24 * 365).contains(&session_hours) {
            return Err(problem(
                "JWT_EXPIRATION_HOURS",
                "must be between 1 and 8760",
            ));
        }
        if !(1..=24 * 60).contains(&access_minutes) || access_minutes > session_hours * 60 {
            return Err(problem(
                "ACCESS_TOKEN_MINUTES",
                "must be between 1 and 1440 and within JWT_EXPIRATION_HOURS",
            ));
        }
        let jwt = JwtSettings {
            secret: jwt_secret,
            issuer: v
                .optional("JWT_ISSUER")
                .unwrap_or_else(|| "patreon-gate".into()),
            audience: v.optional("JWT_AUDIENCE"),
            access_ttl: chrono::Duration::minutes(access_minutes),
            max_session_age: chrono::Duration::hours(session_hours),
        };

        let key_id = KeyId::parse(
            &v.optional("TOKEN_ENCRYPTION_KEY_ID")
                .unwrap_or_else(|| "k1".into()),
        )
        .map_err(|e| problem("TOKEN_ENCRYPTION_KEY_ID", e.to_string()))?;
        let old_keys = match v.optional("TOKEN_ENCRYPTION_OLD_KEYS") {
            None => Vec::new(),
            Some(raw) => TokenCipher::parse_old_keys(&SecretString::from(raw))
                .map_err(|e| problem("TOKEN_ENCRYPTION_OLD_KEYS", e.to_string()))?,
        };
        let token_cipher = TokenCipher::new(key_id, &v.secret("TOKEN_ENCRYPTION_KEY")?, old_keys)
            .map_err(|e| problem("TOKEN_ENCRYPTION_KEY", e.to_string()))?;

        let campaign_id = v.required("PATREON_CAMPAIGN_ID")?;
        if !crate::patreon::resources::is_numeric_id(&campaign_id) {
            return Err(problem(
                "PATREON_CAMPAIGN_ID",
                "must be Patreon's numeric campaign id",
            ));
        }
        let patreon = PatreonSettings {
            client_id: v.required("PATREON_CLIENT_ID")?,
            client_secret: v.secret("PATREON_CLIENT_SECRET")?,
            redirect_uri: v.url("PATREON_REDIRECT_URI", v.required("PATREON_REDIRECT_URI")?)?,
            campaign_id,
            base_url: v.url(
                "PATREON_BASE_URL",
                v.optional("PATREON_BASE_URL")
                    .unwrap_or_else(|| "https://www.patreon.com".into()),
            )?,
            authorize_url: v
                .optional("PATREON_AUTHORIZE_URL")
                .map(|raw| v.url("PATREON_AUTHORIZE_URL", raw))
                .transpose()?,
            scopes: v
                .optional("PATREON_SCOPES")
                .unwrap_or_else(|| "identity identity[email]".into()),
            timeout: Duration::from_secs(v.parsed(
                "PATREON_TIMEOUT_SECS",
                10,
                "a whole number of seconds",
            )?),
            creator_access_token: v
                .optional("PATREON_CREATOR_ACCESS_TOKEN")
                .map(SecretString::from),
            webhook_secret: v.optional("PATREON_WEBHOOK_SECRET").map(SecretString::from),
            requests_per_2s: v.parsed("PATREON_REQUESTS_PER_2S", 95, "a whole number")?,
            requests_per_token_per_min: v.parsed(
                "PATREON_REQUESTS_PER_TOKEN_PER_MIN",
                90,
                "a whole number",
            )?,
        };

        let frontend_url = v.url("FRONTEND_URL", v.required("FRONTEND_URL")?)?;
        let mut allowed_origins = vec![origin_of(&frontend_url)];
        for raw in v
            .optional("CORS_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
        {
            if !raw.is_empty() {
                allowed_origins.push(origin_of(&v.url("CORS_ALLOWED_ORIGINS", raw.to_owned())?));
            }
        }

        let same_site = match v
            .optional("COOKIE_SAMESITE")
            .map(|s| s.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("lax") => SameSite::Lax,
            Some("strict") => SameSite::Strict,
            Some("none") => SameSite::None,
            Some(_) => return Err(problem("COOKIE_SAMESITE", "must be Lax, Strict or None")),
        };
        let cookie_domain = v.optional("COOKIE_DOMAIN");
        if cookie_domain.as_deref().is_some_and(|d| {
            !d.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        }) {
            return Err(problem(
                "COOKIE_DOMAIN",
                "must be a bare host name such as example.com",
            ));
        }
        let cookie = CookieSettings {
            domain: cookie_domain,
            secure: v.flag("COOKIE_SECURE", true)?,
            same_site,
        };
        if cookie.same_site == SameSite::None && !cookie.secure {
            return Err(problem(
                "COOKIE_SAMESITE",
                "None requires COOKIE_SECURE=true",
            ));
        }

        let grace_days: i64 = v.parsed("GRACE_PERIOD_DAYS", 7, "a whole number of days")?;
        let stale_days: i64 = v.parsed("STALE_AFTER_DAYS", 35, "a whole number of days")?;
        let queue_poll = v.parsed::<u64>("QUEUE_POLL_MS", 200, "a whole number of milliseconds")?;
        if !(1..=60_000).contains(&queue_poll) {
            return Err(problem(
                "QUEUE_POLL_MS",
                "must be between 1 and 60000 milliseconds",
            ));
        }
        let queue_poll = Duration::from_millis(queue_poll);
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
pub use proxies::TrustedProxies;

#[cfg(test)]
mod tests;
