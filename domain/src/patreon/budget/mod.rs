//! Patreon's quotas (100 requests per 2 s per client, 100 per minute per token), kept below the
//! line by us rather than discovered through 429s. Sliding windows: at most `limit` calls in any
//! `window`, counted for the whole deployment: in Redis when `REDIS_URL` is set (with Redis's own
//! clock, so replicas agree), else in the database (so the api, `worker run` and `worker sweep
//! --now` share one budget on the embedded default too). If the shared store stops answering,
//! the process counts alone. Tokens are named by a short hash, never by their value.
//!
//! A 429 is Patreon telling the whole deployment to slow down: [`PatreonBudget::pause`] holds
//! every call, in every process, until its `Retry-After` has passed.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

mod database;
mod local;
mod redis;

use database::DatabaseBudget;
use local::LocalBudget;
use redis::RedisBudget;

/// Patreon's client window (2 s) plus slack. A saturated budget reuses each slot the moment it
/// frees, so calls land exactly on the window's edge; without slack, a few milliseconds of
/// network jitter let Patreon count one more than we did (seen: 3 to 4 429s per 10,000 calls).
pub const CLIENT_WINDOW: Duration = Duration::from_millis(2_050);
/// Patreon's per-token window (1 minute) plus slack, for the same reason.
pub const TOKEN_WINDOW: Duration = Duration::from_millis(60_500);
/// How long a 429 without a `Retry-After` pauses every call: Patreon's client window.
pub const DEFAULT_PAUSE: Duration = Duration::from_secs(2);
/// The longest pause a 429 can ask for; a larger hint is taken as this.
const MAX_PAUSE: Duration = Duration::from_secs(300);

/// The budget for `settings`' limits.
pub fn quotas(settings: &crate::infra::config::PatreonSettings) -> (Quota, Quota) {
    (
        Quota::new(settings.requests_per_2s, CLIENT_WINDOW),
        Quota::new(settings.requests_per_token_per_min, TOKEN_WINDOW),
    )
}

/// At most `limit` calls in any `window`.
#[derive(Clone, Copy, Debug)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

impl Quota {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1),
            window,
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Where the deployment's count is kept.
enum Shared {
    None,
    Redis(RedisBudget),
    Database(DatabaseBudget),
}

pub struct PatreonBudget {
    client: Quota,
    per_token: Quota,
    local: LocalBudget,
    shared: Shared,
}

impl PatreonBudget {
    /// Counted in this process.
    pub fn local(client: Quota, per_token: Quota) -> Self {
        Self {
            client,
            per_token,
            local: LocalBudget::default(),
            shared: Shared::None,
        }
    }

    /// Counted across every process sharing `redis` and `key_prefix`.
    pub fn shared(
        client: Quota,
        per_token: Quota,
        redis: ::redis::aio::ConnectionManager,
        key_prefix: String,
    ) -> Self {
        Self {
            shared: Shared::Redis(RedisBudget::new(redis, key_prefix)),
            ..Self::local(client, per_token)
        }
    }

    /// Counted across every process using the database `db` (the deployment without Redis).
    pub fn database(client: Quota, per_token: Quota, db: sea_orm::DatabaseConnection) -> Self {
        Self {
            shared: Shared::Database(DatabaseBudget::new(db)),
            ..Self::local(client, per_token)
        }
    }

    /// Waits until a call may go to Patreon: one with `token` counts against that token's
    /// quota too (calls to the token endpoint pass `None`).
    pub async fn acquire(&self, token: Option<&SecretString>) {
        // Without a deadline there is nothing to give up on.
        let _ = self.acquire_within(token, None).await;
    }

    /// [`Self::acquire`], unless that means waiting longer than `max_wait` (when set): then
    /// returns at once with how long the wait would be, for callers someone is waiting on (a
    /// sign-in) to answer now rather than hang through a pause.
    pub async fn acquire_within(
        &self,
        token: Option<&SecretString>,
        max_wait: Option<Duration>,
    ) -> Result<(), Duration> {
        let deadline = max_wait.map(|d| Instant::now() + d);
        if let Some(token) = token {
            // The token's quota first: waiting on it must not hold a client-wide slot.
            let key = format!("token:{}", fingerprint(token));
            self.acquire_slot(&key, self.per_token, deadline).await?;
        }
        self.acquire_slot("client", self.client, deadline).await
    }

    /// Holds every call of the deployment for `how_long` (Patreon answered 429): calls already
    /// waiting, and those of other processes, go out only after it.
    pub async fn pause(&self, how_long: Duration) {
        let how_long = how_long.min(MAX_PAUSE);
        self.local.pause(how_long);
        let paused = match &self.shared {
            Shared::None => Ok(()),
            Shared::Redis(redis) => redis.pause(how_long).await.map_err(|e| e.to_string()),
            Shared::Database(db) => db.pause(how_long).await.map_err(|e| e.to_string()),
        };
        if let Err(e) = paused {
            tracing::warn!(error = %e, "cannot share a Patreon pause; pausing this process only");
        }
        tracing::info!(
            pause_ms = how_long.as_millis() as u64,
            "Patreon rate limited us; calls paused"
        );
    }

    async fn acquire_slot(
        &self,
        key: &str,
        quota: Quota,
        deadline: Option<Instant>,
    ) -> Result<(), Duration> {
        let wait_for = |wait: Duration| async move {
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return Err(wait);
            }
            tokio::time::sleep(wait).await;
            Ok(())
        };
        loop {
            // This process's own record of a 429 holds, whatever the shared store says.
            if let Some(wait) = self.local.paused_for() {
                wait_for(wait).await?;
                continue;
            }
            let shared = match &self.shared {
                Shared::None => Ok(None),
                Shared::Redis(redis) => redis
                    .try_take(key, quota)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string()),
                Shared::Database(db) => db
                    .try_take(key, quota)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string()),
            };
            let wait = match shared {
                Ok(Some(wait)) => wait,
                Ok(None) => self.local.try_take(key, quota),
                Err(e) => {
                    tracing::warn!(error = %e, "shared Patreon budget unavailable; counting locally");
                    self.local.try_take(key, quota)
                }
            };
            if wait.is_zero() {
                return Ok(());
            }
            wait_for(wait).await?;
        }
    }
}

/// A short, non-reversible name for a token: enough to tell tokens apart, useless to an attacker.
fn fingerprint(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose_secret().as_bytes());
    hex::encode(&digest[..12])
}

#[cfg(test)]
mod tests;
