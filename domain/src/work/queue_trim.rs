//! Keeping the queue small: apalis never deletes a finished job (Redis keeps each one's data and
//! metadata with no expiry, the SQLite queue keeps every row), so on a Redis with `noeviction`
//! the queue grows until writes fail. The worker trims finished jobs after `QUEUE_RETENTION_HOURS`
//! and reports how many jobs the queue holds (`gate_queue_jobs{state}`).
//!
//! The outcomes that matter are in the database (job requests, sweep items, checks), so a trimmed
//! job loses nothing but apalis's own copy of its result.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::Duration;

use crate::work::jobs::{JobQueue, QueueError};

/// Finished jobs looked at per Redis call, so one call never blocks Redis for long.
const REDIS_BATCH: usize = 500;

/// Removes one batch of the finished jobs in a done or dead set: their id from the set, their data,
/// metadata and result. Jobs that finished after the cutoff stay.
const TRIM_SCRIPT: &str = r"
-- KEYS[1] the done or dead set, KEYS[2] the data hash, KEYS[3] the metadata key prefix
-- ARGV[1] cutoff (unix seconds), ARGV[2] SSCAN cursor, ARGV[3] batch size
local scan = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local removed = 0
for _, id in ipairs(scan[2]) do
  local meta = KEYS[3] .. ':' .. id
  local done_at = tonumber(redis.call('HGET', meta, 'done_at'))
  if done_at == nil or done_at <= tonumber(ARGV[1]) then
    redis.call('SREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3] .. ':result', id)
    redis.call('DEL', meta)
    removed = removed + 1
  end
end
return {scan[1], removed}
";

fn unavailable(e: impl std::fmt::Display) -> QueueError {
    QueueError::Unavailable(e.to_string())
}

/// Deletes the jobs that finished (done, or dead) more than `retention` ago; returns how many.
pub async fn trim_finished(queue: &JobQueue, retention: Duration) -> Result<u64, QueueError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let cutoff = now.saturating_sub(retention.num_seconds().max(0) as u64);
    match queue.clone() {
        JobQueue::Redis(mut storage) => {
            let config = storage.get_config().clone();
            let sets = [config.done_jobs_set(), config.dead_jobs_set()];
            let script = redis::Script::new(TRIM_SCRIPT);
            let conn = storage.get_connection();
            let mut removed = 0;
            for set in sets {
                let mut cursor = "0".to_owned();
                loop {
                    let (next, n): (String, u64) = script
                        .key(&set)
                        .key(config.job_data_hash())
                        .key(config.job_meta_hash())
                        .arg(cutoff)
                        .arg(&cursor)
                        .arg(REDIS_BATCH)
                        .invoke_async(conn)
                        .await
                        .map_err(unavailable)?;
                    removed += n;
                    if next == "0" {
                        break;
                    }
                    cursor = next;
                }
            }
            Ok(removed)
        }
        JobQueue::Sqlite(storage) => {
            // The terminal states as apalis's own vacuum knows them; a failed job that may still
            // be retried is not finished.
            let removed = sea_orm::sqlx::query(
                "DELETE FROM Jobs WHERE done_at IS NOT NULL AND done_at <= ?1 \
                 AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts))",
            )
            .bind(cutoff as i64)
            .execute(storage.pool())
            .await
            .map_err(unavailable)?
            .rows_affected();
            // Each worker run registers under a name of its own; forget those long gone.
            sea_orm::sqlx::query(
                "DELETE FROM Workers WHERE last_seen <= ?1 \
                 AND NOT EXISTS (SELECT 1 FROM Jobs WHERE Jobs.lock_by = Workers.id)",
            )
            .bind(cutoff as i64)
            .execute(storage.pool())
            .await
            .map_err(unavailable)?;
            Ok(removed)
        }
    }
}

/// How many jobs the queue holds, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueSize {
    /// Waiting to run (now or later).
    pub waiting: u64,
    /// Taken by a worker and not finished.
    pub running: u64,
    /// Finished well, kept until trimmed.
    pub done: u64,
    /// Gave up, kept until trimmed.
    pub dead: u64,
}

impl QueueSize {
    /// Each state with its label, as `gate_queue_jobs{state}` names it.
    pub fn by_state(&self) -> [(&'static str, u64); 4] {
        [
            ("waiting", self.waiting),
            ("running", self.running),
            ("done", self.done),
            ("dead", self.dead),
        ]
    }
}

pub async fn size(queue: &JobQueue) -> Result<QueueSize, QueueError> {
    match queue.clone() {
        JobQueue::Redis(mut storage) => {
            let config = storage.get_config().clone();
            let (active, scheduled, done, dead, stored): (u64, u64, u64, u64, u64) = redis::pipe()
                .llen(config.active_jobs_list())
                .zcard(config.scheduled_jobs_set())
                .scard(config.done_jobs_set())
                .scard(config.dead_jobs_set())
                .hlen(config.job_data_hash())
                .query_async(storage.get_connection())
                .await
                .map_err(unavailable)?;
            let waiting = active + scheduled;
            Ok(QueueSize {
                waiting,
                // Whatever is stored and neither waiting nor finished is in a worker's hands.
                running: stored.saturating_sub(waiting + done + dead),
                done,
                dead,
            })
        }
        JobQueue::Sqlite(storage) => {
            let rows: Vec<(String, i64)> =
                sea_orm::sqlx::query_as("SELECT status, COUNT(*) FROM Jobs GROUP BY status")
                    .fetch_all(storage.pool())
                    .await
                    .map_err(unavailable)?;
            let mut size = QueueSize::default();
            for (status, n) in rows {
                let n = n.max(0) as u64;
                match status.as_str() {
                    "Pending" | "Queued" | "Failed" => size.waiting += n,
                    "Running" => size.running += n,
                    "Done" => size.done += n,
                    _ => size.dead += n,
                }
            }
            Ok(size)
        }
    }
}
