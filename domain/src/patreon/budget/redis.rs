//! The budget counted in Redis for every process sharing its key prefix.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::Quota;

/// Waits out a pause (`KEYS[2]`), then takes a slot if one is free; else returns how long until
/// the pause ends or the oldest slot frees.
const TAKE_SLOT: &str = r"
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return paused
end
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

/// Pauses for `ARGV[1]` ms, unless a longer pause already holds.
const PAUSE: &str = r"
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
";

pub(super) struct RedisBudget {
    redis: ConnectionManager,
    prefix: String,
    take_slot: redis::Script,
    pause: redis::Script,
}

impl RedisBudget {
    pub(super) fn new(redis: ConnectionManager, prefix: String) -> Self {
        Self {
            redis,
            prefix,
            take_slot: redis::Script::new(TAKE_SLOT),
            pause: redis::Script::new(PAUSE),
        }
    }

    fn paused_key(&self) -> String {
        format!("{}:paused", self.prefix)
    }

    /// Zero when a slot was taken, else how long to wait before trying again.
    pub(super) async fn try_take(
        &self,
        key: &str,
        quota: Quota,
    ) -> Result<Duration, redis::RedisError> {
        let mut conn = self.redis.clone();
        let wait_ms: u64 = self
            .take_slot
            .key(format!("{}:{key}", self.prefix))
            .key(self.paused_key())
            .arg(quota.window_ms())
            .arg(quota.limit)
            .arg(crate::infra::secrets::random_id())
            .invoke_async(&mut conn)
            .await?;
        Ok(Duration::from_millis(wait_ms))
    }

    pub(super) async fn pause(&self, how_long: Duration) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        let ms = u64::try_from(how_long.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let _: i64 = self
            .pause
            .key(self.paused_key())
            .arg(ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
