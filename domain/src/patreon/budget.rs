//! Patreon's client-wide quota (100 requests per 2 s), kept below the line by us rather than
//! discovered through 429s. A sliding window: at most `limit` calls in any `window`, counted in
//! Redis for the whole deployment when `REDIS_URL` is set (with Redis's own clock, so replicas
//! agree), else in this process. If Redis stops answering, the process counts alone.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;

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

pub struct PatreonBudget {
    limit: usize,
    window: Duration,
    local: Mutex<VecDeque<Instant>>,
    shared: Option<(ConnectionManager, String, redis::Script)>,
}

impl PatreonBudget {
    /// `limit` calls per `window` in this process.
    pub fn local(limit: u32, window: Duration) -> Self {
        Self {
            limit: limit.max(1) as usize,
            window,
            local: Mutex::new(VecDeque::new()),
            shared: None,
        }
    }

    /// `limit` calls per `window` across every process sharing `redis` and `key`.
    pub fn shared(limit: u32, window: Duration, redis: ConnectionManager, key: String) -> Self {
        Self {
            shared: Some((redis, key, redis::Script::new(TAKE_SLOT))),
            ..Self::local(limit, window)
        }
    }

    /// Waits until a call may go to Patreon.
    pub async fn acquire(&self) {
        loop {
            let wait = match self.try_shared().await {
                Some(wait) => wait,
                None => self.try_local(),
            };
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// `None` when there is no shared budget or Redis did not answer.
    async fn try_shared(&self) -> Option<Duration> {
        let (redis, key, script) = self.shared.as_ref()?;
        let mut conn = redis.clone();
        let slot = crate::secrets::random_id();
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let result: Result<u64, _> = script
            .key(key)
            .arg(window_ms)
            .arg(self.limit)
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

    fn try_local(&self) -> Duration {
        let now = Instant::now();
        let mut calls = self.local.lock().unwrap_or_else(|e| e.into_inner());
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            calls.pop_front();
        }
        if calls.len() < self.limit {
            calls.push_back(now);
            return Duration::ZERO;
        }
        calls
            .front()
            .map_or(Duration::ZERO, |oldest| {
                (*oldest + self.window).saturating_duration_since(now)
            })
            .max(Duration::from_millis(1))
    }
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
        let a = PatreonBudget::shared(4, window, conn().await, key.clone());
        let b = PatreonBudget::shared(4, window, conn().await, key);
        let started = Instant::now();
        let mut times = Vec::new();
        for i in 0..12 {
            if i % 2 == 0 {
                a.acquire().await
            } else {
                b.acquire().await
            }
            times.push(started.elapsed());
        }
        // Redis's clock and ours differ by microseconds; allow 20 ms of slack at the edges.
        assert_within(&times, 4, window - Duration::from_millis(20));
    }

    #[tokio::test]
    async fn never_more_than_the_limit_in_any_window() {
        let budget = PatreonBudget::local(5, Duration::from_millis(200));
        let started = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            budget.acquire().await;
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
}
