//! Background jobs: the payloads the api pushes and the worker runs, and the queue they travel
//! on: Redis when `REDIS_URL` is set, else an embedded SQLite queue file. Payloads carry ids
//! only, never tokens or secrets. The database, not the queue, is the record of work owed.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskSink};
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::membership_checks::CheckTrigger;

/// Default file of the embedded queue, used when `REDIS_URL` is unset.
pub const DEFAULT_QUEUE_SQLITE_URL: &str = "sqlite://./data/queue.db?mode=rwc";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Job {
    /// Check one member against Patreon now; `request_id` names the `job_requests` row to
    /// report into when someone is waiting for the outcome.
    VerifyMembership {
        user_id: i64,
        trigger: CheckTrigger,
        request_id: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the embedded queue: {0}")]
    Open(String),
    #[error("cannot push the job: {0}")]
    Push(String),
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
        settings: &crate::config::Settings,
        redis: Option<&ConnectionManager>,
    ) -> Result<Self, QueueError> {
        let queue = format!("{}:jobs", settings.redis_key_prefix);
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
        crate::db::create_sqlite_parent_dir(url);
        let pool = SqlitePool::connect(url)
            .await
            .map_err(|e| QueueError::Open(e.to_string()))?;
        SqliteStorage::setup(&pool)
            .await
            .map_err(|e| QueueError::Open(e.to_string()))?;
        let config = apalis_sqlite::Config::default()
            .queue(queue)
            .heartbeat_interval(Duration::from_secs(10))
            .missed_heartbeats(6);
        Ok(Self::Sqlite(SqliteStorage::new(&pool).with_config(config)))
    }

    pub async fn push(&self, job: Job) -> Result<(), QueueError> {
        let task = TaskBuilder::new(job).build();
        let pushed = match self.clone() {
            Self::Redis(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
            Self::Sqlite(mut storage) => storage.push_task(task).await.map_err(|e| e.to_string()),
        };
        pushed.map_err(QueueError::Push)
    }
}
