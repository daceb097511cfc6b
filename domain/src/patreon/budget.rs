//! Patreon's quotas (100 requests per 2 s per client, 100 per minute per token), kept below the
//! line by us rather than discovered through 429s. Sliding windows: at most `limit` calls in any
//! `window`, counted in Redis for the whole deployment when `REDIS_URL` is set (with Redis's own
//! clock, so replicas agree), else in this process. If Redis stops answering, the process counts
//! alone. Tokens are named in Redis by a short hash, never by their value.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Takes a slot if one is free; else returns how long until the oldest slot frees.
const TAKE_SLOT: &str = r"
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now_ms)
";

/// Patreon's client window (2 s) plus slack. A saturated budget reuses each slot the moment it
/// frees, so calls land exactly on the window's edge; without slack, a few milliseconds of
/// network jitter let Patreon count one more than we did (seen: 3 to 4 429s per 10,000 calls).
pub const CLIENT_WINDOW: Duration = Duration::from_millis(2_050);
/// Patreon's per-token window (1 minute) plus slack, for the same reason.
pub const TOKEN_WINDOW: Duration = Duration::from_millis(60_500);

/// The budget for `settings`' limits.
pub fn quotas(settings: &crate::config::PatreonSettings) -> (Quota, Quota) {
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
}

/// Local windows kept before idle ones are dropped (one per token seen recently).
const LOCAL_WINDOWS_SOFT_CAP: usize = 1024;

pub struct PatreonBudget {
    client: Quota,
    per_token: Quota,
    local: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Redis connection, key prefix and the slot script.
    shared: Option<(ConnectionManager, String, redis::Script)>,
}

impl PatreonBudget {
    /// Counted in this process.
    pub fn local(client: Quota, per_token: Quota) -> Self {
        Self {
            client,
            per_token,
            local: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Counted across every process sharing `redis` and `key_prefix`.
    pub fn shared(
        client: Quota,
        per_token: Quota,
        redis: ConnectionManager,
        key_prefix: String,
    ) -> Self {
        Self {
            shared: Some((redis, key_prefix, redis::Script::new(TAKE_SLOT))),
            ..Self::local(client, per_token)
        }
    }

    /// Waits until a call may go to Patreon: one with `token` counts against that token's
    /// quota too (calls to the token endpoint pass `None`).
    pub async fn acquire(&self, token: Option<&SecretString>) {
        if let Some(token) = token {
            // The token's quota first: waiting on it must not hold a client-wide slot.
            let key = format!("token:{}", fingerprint(token));
            self.acquire_slot(&key, self.per_token).await;
        }
        self.acquire_slot("client", self.client).await;
    }

    async fn acquire_slot(&self, key: &str, quota: Quota) {
        loop {
            let wait = match self.try_shared(key, quota).await {
                Some(wait) => wait,
                None => self.try_local(key, quota),
            };
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `None` when there is no shared budget or Redis did not answer.
    async fn try_shared(&self, key: &str, quota: Quota) -> Option<Duration> {
        let (redis, prefix, script) = self.shared.as_ref()?;
        let mut conn = redis.clone();
        let slot = crate::secrets::random_id();
        let window_ms = u64::try_from(quota.window.as_millis()).unwrap_or(u64::MAX);
        let result: Result<u64, _> = script
            .key(format!("{prefix}:{key}"))
            .arg(window_ms)
            .arg(quota.limit)
            .arg(slot)
            .invoke_async(&mut conn)
            .await;
        match result {
            Ok(wait_ms) => Some(Duration::from_millis(wait_ms)),
            Err(e) => {
                tracing::warn!(error = %e, "shared Patreon budget unavailable; counting locally");
                None
            }
        }
    }

    fn try_local(&self, key: &str, quota: Quota) -> Duration {
        let now = Instant::now();
        let mut windows = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > LOCAL_WINDOWS_SOFT_CAP {
            windows.retain(|_, calls| {
                calls.back().is_some_and(|t| {
                    now.duration_since(*t) < quota.window.max(Duration::from_secs(60))
                })
            });
        }
        let calls = windows.entry(key.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= quota.window)
        {
            calls.pop_front();
        }
        if calls.len() < quota.limit as usize {
            calls.push_back(now);
            return Duration::ZERO;
        }
        calls
            .front()
            .map_or(Duration::ZERO, |oldest| {
                (*oldest + quota.window).saturating_duration_since(now)
            })
            .max(Duration::from_millis(1))
    }
}

/// A short, non-reversible name for a token: enough to tell tokens apart, useless to an attacker.
fn fingerprint(token: &SecretString) -> String {
    let digest = Sha256::digest(token.expose_secret().as_bytes());
    hex::encode(&digest[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every window of `window` holds at most `limit` of the `times`.
    fn assert_within(times: &[Duration], limit: usize, window: Duration) {
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u < *t + window).count();
            assert!(
                in_window <= limit,
                "{in_window} calls within {window:?} from call {i}"
            );
        }
    }

    #[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
    #[tokio::test]
    async fn processes_sharing_redis_share_one_budget() {
        let Some(url) = std::env::var("TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var("REQUIRE_REDIS").is_err(),
                "REQUIRE_REDIS is set but TEST_REDIS_URL is not"
            );
            return;
        };
        let key = format!(
            "gate-test-{}:patreon:client-budget",
            crate::secrets::random_id()
        );
        let window = Duration::from_millis(300);
        let conn = || async {
            crate::redis::connect(&secrecy::SecretString::from(url.clone()))
                .await
                .unwrap()
        };
        let quota = Quota::new(4, window);
        let roomy = Quota::new(1000, window);
        let a = PatreonBudget::shared(quota, roomy, conn().await, key.clone());
        let b = PatreonBudget::shared(quota, roomy, conn().await, key);
        let started = Instant::now();
        let mut times = Vec::new();
        for i in 0..12 {
            if i % 2 == 0 {
                a.acquire(None).await
            } else {
                b.acquire(None).await
            }
            times.push(started.elapsed());
        }
        // Redis's clock and ours differ by microseconds; allow 20 ms of slack at the edges.
        assert_within(&times, 4, window - Duration::from_millis(20));
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_any_window() {
        let window = Duration::from_millis(200);
        let budget = PatreonBudget::local(Quota::new(5, window), Quota::new(1000, window));
        let started = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            budget.acquire(None).await;
            times.push(started.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .filter(|u| **u < *t + Duration::from_millis(200))
                .count();
            assert!(
                in_window <= 5,
                "{in_window} calls within 200 ms from call {i}"
            );
        }
    }

    #[tokio::test]
    async fn one_busy_token_waits_without_slowing_the_others() {
        let window = Duration::from_millis(300);
        let budget = PatreonBudget::local(Quota::new(1000, window), Quota::new(3, window));
        let busy = SecretString::from("token-of-a-busy-member");
        let other = SecretString::from("token-of-another-member");
        let started = Instant::now();
        let mut busy_times = Vec::new();
        for _ in 0..7 {
            budget.acquire(Some(&busy)).await;
            busy_times.push(started.elapsed());
        }
        assert_within(&busy_times, 3, window);
        let before = Instant::now();
        for _ in 0..3 {
            budget.acquire(Some(&other)).await;
        }
        assert!(
            before.elapsed() < Duration::from_millis(50),
            "another token has its own quota"
        );
    }

    #[test]
    fn tokens_are_named_by_a_hash_not_their_value() {
        let token = SecretString::from("secret-access-token-value");
        let name = fingerprint(&token);
        assert_eq!(name.len(), 24);
        assert!(!name.contains("secret"));
        assert_eq!(
            name,
            fingerprint(&SecretString::from("secret-access-token-value"))
        );
    }
}
