//! Background jobs: the payloads the api pushes and the worker runs, and the queue they travel
//! on: Redis when `REDIS_URL` is set, else an embedded SQLite queue file. Payloads carry ids
//! only, never tokens or secrets. The database, not the queue, is the record of work owed.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::{JobRequestId, SweepId, UserId, WebhookEventId};
use entity::states::CheckTrigger;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// Check one member against Patreon now; `request_id` names the `job_requests` row to
    /// report into when someone is waiting for the outcome, `sweep_id` the sweep it is part of.
    VerifyMembership {
        user_id: UserId,
        trigger: CheckTrigger,
        #[serde(default)]
        request_id: Option<JobRequestId>,
        #[serde(default)]
        sweep_id: Option<SweepId>,
    },
    /// Refresh one member's Patreon token pair if it expires soon. `attempt` counts transient
    /// failures so far (0 on the first run).
    RefreshToken {
        user_id: UserId,
        #[serde(default)]
        attempt: i32,
    },
    /// Push what sweep `sweep_id` still owes (its fan-out, in batches from the database).
    Sweep { sweep_id: SweepId },
    /// Apply the recorded Patreon webhook delivery `event_id`.
    ApplyWebhook { event_id: WebhookEventId },
}

impl Job {
    /// The job's kind, as logs and metrics name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::VerifyMembership { .. } => "verify_membership",
            Job::RefreshToken { .. } => "refresh_token",
            Job::Sweep { .. } => "sweep",
            Job::ApplyWebhook { .. } => "apply_webhook",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the embedded queue: {0}")]
    Open(String),
    #[error("cannot push the job: {0}")]
    Push(String),
    #[error("the job queue did not answer: {0}")]
    Unavailable(String),
}

/// Where jobs wait. Cheap to clone; every clone talks to the same queue.
#[derive(Clone)]
pub enum JobQueue {
    Redis(RedisStorage<Job>),
    Sqlite(SqliteStorage<Job>),
}

impl JobQueue {
    /// The queue this deployment uses: Redis (sharing `redis`, the process's connection) when
    /// `REDIS_URL` is set, else the embedded SQLite queue.
    pub async fn open(
        settings: &crate::infra::config::Settings,
        redis: Option<&ConnectionManager>,
    ) -> Result<Self, QueueError> {
        let queue = format!("{}:jobs", settings.redis_key_prefix);
        if let Some(warning) = setup_warning(settings) {
            tracing::warn!("{warning}");
        }
        match redis {
            Some(conn) => Ok(Self::redis(conn.clone(), &queue)),
            None => Self::sqlite(&settings.queue_sqlite_url, &queue).await,
        }
    }

    /// The Redis queue named `queue` (a key prefix), sharing the process's connection.
    pub fn redis(conn: ConnectionManager, queue: &str) -> Self {
        let config = apalis_redis::Config::default()
            .queue(queue)
            .heartbeat_interval(Duration::from_secs(10))
            .missed_heartbeats(6)
            .idempotency_ttl(Some(Duration::from_secs(3600)));
        Self::Redis(RedisStorage::new(conn).with_config(config))
    }

    /// The embedded queue in the SQLite file at `url` (created and migrated if needed).
    pub async fn sqlite(url: &str, queue: &str) -> Result<Self, QueueError> {
        crate::infra::db::create_sqlite_parent_dir(url);
        let pool = SqlitePool::connect(url)
            .await
            .map_err(|e| QueueError::Open(e.to_string()))?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| QueueError::Open(e.to_string()))?;
        // As on Redis: a job found orphaned after 60 s. Pickup no longer waits on the heartbeat
        // (an idle worker used to, now and then, until `worker::poll` kept it polling).
        let config = apalis_sqlite::Config::default()
            .queue(queue)
            .heartbeat_interval(Duration::from_secs(10))
            .missed_heartbeats(6);
        Ok(Self::Sqlite(SqliteStorage::new(&pool).with_config(config)))
    }

    pub async fn push(&self, job: Job) -> Result<(), QueueError> {
        self.push_after(job, Duration::ZERO).await
    }

    /// Pushes `jobs` in one go (a sweep's batch): far fewer round trips than one push each.
    pub async fn push_many(&self, jobs: Vec<Job>) -> Result<(), QueueError> {
        let counts: Vec<&'static str> = jobs.iter().map(Job::kind).collect();
        let pushed = match self.clone() {
            Self::Redis(mut storage) => storage.push_bulk(jobs).await.map_err(|e| e.to_string()),
            Self::Sqlite(mut storage) => storage.push_bulk(jobs).await.map_err(|e| e.to_string()),
        };
        pushed.map_err(QueueError::Push)?;
        for kind in counts {
            crate::infra::metrics::metrics().job(kind, "pushed");
        }
        Ok(())
    }

    /// Pushes `job` to run no earlier than `delay` from now.
    pub async fn push_after(&self, job: Job, delay: Duration) -> Result<(), QueueError> {
        let kind = job.kind();
        let task = TaskBuilder::new(job).run_after(delay).build();
        let pushed = match self.clone() {
            Self::Redis(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
            Self::Sqlite(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
        };
        pushed.map_err(QueueError::Push)?;
        crate::infra::metrics::metrics().job(kind, "pushed");
        Ok(())
    }
}

/// A warning for a setup where the queue cannot be shared beyond one host: a PostgreSQL database
/// (reachable from anywhere) with the embedded queue in a local file.
pub fn setup_warning(settings: &crate::infra::config::Settings) -> Option<String> {
    let file_queue = settings.redis_url.is_none();
    let shared_database = !settings.database_url.starts_with("sqlite:");
    (file_queue && shared_database).then(|| {
        format!(
            "REDIS_URL is unset, so the job queue is the local file {}: an api and a worker on different hosts or containers will not share it (set REDIS_URL)",
            settings.queue_sqlite_url
        )
    })
}

/// How many times a job is tried when Patreon keeps failing transiently.
pub const MAX_ATTEMPTS: i32 = 5;

/// When to try again after a transient failure on attempt `attempt` (1-based): Patreon's own
/// hint when it gave one, else [`backoff`].
pub fn retry_delay(error: &crate::patreon::PatreonError, attempt: i32) -> Duration {
    if let crate::patreon::PatreonError::RateLimited {
        retry_after: Some(hint),
    } = error
    {
        return *hint;
    }
    backoff(attempt)
}

/// Exponential from 1 s on attempt `attempt` (1, 2, 4, 8 … capped at 60 s) with ±25 % jitter,
/// so retries of many jobs failing together do not arrive together.
pub fn backoff(attempt: i32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.clamp(1, 7).saturating_sub(1))
        .min(Duration::from_secs(60));
    let jitter = rand::random_range(0.75..1.25);
    base.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patreon::PatreonError;

    /// Jobs pushed by the previous version (when the trigger was not yet a stored enum) may still
    /// wait in Redis: they must read the same, and new ones must be written the same.
    #[test]
    fn jobs_queued_by_the_previous_version_still_deserialize() {
        let old =
            r#"{"type":"verify_membership","user_id":7,"trigger":"webhook","request_id":"r1"}"#;
        let job: Job = serde_json::from_str(old).unwrap();
        assert_eq!(
            job,
            Job::VerifyMembership {
                user_id: UserId(7),
                trigger: CheckTrigger::Webhook,
                request_id: Some(JobRequestId::from("r1")),
                sweep_id: None,
            }
        );
        let sweep = r#"{"type":"verify_membership","user_id":8,"trigger":"sweep","sweep_id":3}"#;
        let job: Job = serde_json::from_str(sweep).unwrap();
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            serde_json::json!({"type": "verify_membership", "user_id": 8, "trigger": "sweep",
                "request_id": null, "sweep_id": 3})
        );
        let unknown = r#"{"type":"verify_membership","user_id":7,"trigger":"robot"}"#;
        assert!(serde_json::from_str::<Job>(unknown).is_err());
    }

    /// Jobs queued by a release from before the typed ids must still run after an upgrade: the
    /// ids read and write as the bare numbers and strings they were.
    #[test]
    fn payloads_queued_before_the_typed_ids_read_and_write_unchanged() {
        let queued = [
            r#"{"type":"verify_membership","user_id":42,"trigger":"admin","request_id":"a1b2","sweep_id":null}"#,
            r#"{"type":"verify_membership","user_id":42,"trigger":"sweep","request_id":null,"sweep_id":7}"#,
            r#"{"type":"refresh_token","user_id":42,"attempt":2}"#,
            r#"{"type":"sweep","sweep_id":7}"#,
            r#"{"type":"apply_webhook","event_id":9}"#,
        ];
        for json in queued {
            let job: Job = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&job).unwrap(), json);
        }
        let old: Job =
            serde_json::from_str(r#"{"type":"verify_membership","user_id":42,"trigger":"member"}"#)
                .unwrap();
        assert_eq!(
            old,
            Job::VerifyMembership {
                user_id: UserId(42),
                trigger: CheckTrigger::Member,
                request_id: None,
                sweep_id: None,
            }
        );
        let Job::VerifyMembership {
            request_id,
            sweep_id,
            ..
        } = serde_json::from_str(queued[0]).unwrap()
        else {
            panic!("a verification")
        };
        assert_eq!(
            (request_id, sweep_id),
            (Some(JobRequestId::from("a1b2")), None::<SweepId>)
        );
    }

    #[test]
    fn retries_honour_patreons_hint_and_otherwise_back_off_exponentially() {
        let hinted = PatreonError::RateLimited {
            retry_after: Some(Duration::from_secs(9)),
        };
        assert_eq!(retry_delay(&hinted, 3), Duration::from_secs(9));
        let outage = PatreonError::Unavailable { status: 503 };
        for (attempt, base) in [(1, 1.0_f64), (2, 2.0), (3, 4.0), (6, 32.0), (9, 60.0)] {
            let delay = retry_delay(&outage, attempt).as_secs_f64();
            let (low, high) = (base * 0.75, (base * 1.25).min(75.0));
            assert!((low..=high).contains(&delay), "attempt {attempt}: {delay}s");
        }
    }
}
