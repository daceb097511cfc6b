//! Which job queue a process uses, and whether the queue still holds what was pushed.
//!
//! Every queue carries an *epoch*: a random id written into the queue itself (a Redis key, a row
//! in the queue file) when it is first used. Two processes share a queue exactly when they read
//! the same epoch, whatever their URLs look like; and a queue that lost everything (`FLUSHALL`,
//! a Redis restart without persistence, a deleted file) comes back with a new epoch. Each api and
//! worker process records its epoch in the database (`queue_clients`), so either side can tell
//! when the other one pushes to, or takes from, a different queue.

use chrono::{Duration, Utc};
use entity::queue_client;
use redis::AsyncCommands;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};

use crate::work::jobs::{JobQueue, QueueError};
use crate::{Result, infra::secrets};

/// A process that has not refreshed its row for this long is taken to be gone.
pub const LIVE_WITHIN: Duration = Duration::seconds(30);
/// Rows of processes gone this long are deleted.
const FORGET_AFTER: Duration = Duration::days(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Api,
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Api => Role::Worker,
            Role::Worker => Role::Api,
        }
    }
}

/// The queue's epoch, written first if the queue has none (a new or emptied queue).
pub async fn epoch(queue: &JobQueue) -> std::result::Result<String, QueueError> {
    let candidate = secrets::random_id();
    match queue.clone() {
        JobQueue::Redis(mut storage) => {
            let key = format!("{}:epoch", storage.get_config().queue.as_ref());
            let conn = storage.get_connection();
            let _: bool = conn
                .set_nx(&key, &candidate)
                .await
                .map_err(|e| QueueError::Open(e.to_string()))?;
            let current: Option<String> = conn
                .get(&key)
                .await
                .map_err(|e| QueueError::Open(e.to_string()))?;
            Ok(current.unwrap_or(candidate))
        }
        JobQueue::Sqlite(storage) => {
            let pool = storage.pool();
            let sql = |e: sea_orm::sqlx::Error| QueueError::Open(e.to_string());
            // A read first: the queue file's writers (apalis) are left alone once there is one.
            let existing: Option<(String,)> =
                sea_orm::sqlx::query_as("SELECT epoch FROM gate_queue_epoch WHERE id = 1")
                    .fetch_optional(pool)
                    .await
                    .unwrap_or(None);
            if let Some((epoch,)) = existing {
                return Ok(epoch);
            }
            sea_orm::sqlx::query(
                "CREATE TABLE IF NOT EXISTS gate_queue_epoch \
                 (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL)",
            )
            .execute(pool)
            .await
            .map_err(sql)?;
            sea_orm::sqlx::query(
                "INSERT INTO gate_queue_epoch (id, epoch) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&candidate)
            .execute(pool)
            .await
            .map_err(sql)?;
            let (epoch,): (String,) =
                sea_orm::sqlx::query_as("SELECT epoch FROM gate_queue_epoch WHERE id = 1")
                    .fetch_one(pool)
                    .await
                    .map_err(sql)?;
            Ok(epoch)
        }
    }
}

/// Where the queue is, for people: the queue file's absolute path, or Redis and the key prefix
/// (never the URL, which may hold a password).
pub fn location(queue: &JobQueue) -> String {
    match queue {
        JobQueue::Redis(storage) => {
            format!("Redis, keys {}:*", storage.get_config().queue.as_ref())
        }
        JobQueue::Sqlite(storage) => {
            let options = storage.pool().connect_options();
            let file = options.get_filename();
            let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
            format!("file {}", file.display())
        }
    }
}

/// One process's view of its queue: records it in the database and notices when the queue's
/// epoch changes under it (the queue lost what it held).
pub struct QueueWatch {
    instance: String,
    role: Role,
    location: String,
    last_epoch: Option<String>,
}

impl QueueWatch {
    /// Starts watching. A worker starts from the epoch workers last recorded for this queue, so a
    /// queue emptied while every worker was down is noticed at its first look.
    pub async fn start(db: &impl ConnectionTrait, role: Role, queue: &JobQueue) -> Result<Self> {
        let location = location(queue);
        let last_epoch = match role {
            Role::Worker => queue_client::Entity::find()
                .filter(queue_client::Column::Role.eq(role.as_str()))
                .filter(queue_client::Column::QueueLocation.eq(&location))
                .order_by_desc(queue_client::Column::SeenAt)
                .one(db)
                .await?
                .map(|row| row.queue_epoch),
            Role::Api => None,
        };
        Ok(Self {
            instance: secrets::random_id(),
            role,
            location,
            last_epoch,
        })
    }

    /// Reads the queue's epoch and records it as this process's; true when it differs from the
    /// one seen before (the queue was emptied or replaced since).
    pub async fn look(&mut self, db: &impl ConnectionTrait, queue: &JobQueue) -> Result<bool> {
        let epoch = epoch(queue)
            .await
            .map_err(|e| crate::Error::Queue(e.to_string()))?;
        let now = Utc::now();
        let row = queue_client::ActiveModel {
            instance: Set(self.instance.clone()),
            role: Set(self.role.as_str().to_owned()),
            queue_epoch: Set(epoch.clone()),
            queue_location: Set(self.location.clone()),
            seen_at: Set(now),
        };
        queue_client::Entity::insert(row)
            .on_conflict(
                OnConflict::column(queue_client::Column::Instance)
                    .update_columns([
                        queue_client::Column::QueueEpoch,
                        queue_client::Column::SeenAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        queue_client::Entity::delete_many()
            .filter(queue_client::Column::SeenAt.lt(now - FORGET_AFTER))
            .exec(db)
            .await?;
        let changed = self.last_epoch.as_ref().is_some_and(|last| *last != epoch);
        self.last_epoch = Some(epoch);
        Ok(changed)
    }
}

/// Why this process and the other side cannot work together, if they cannot: processes of the
/// other role are running, and none of them uses this process's queue.
pub async fn mismatch(
    db: &impl ConnectionTrait,
    role: Role,
    queue: &JobQueue,
) -> Result<Option<String>> {
    let mine = epoch(queue)
        .await
        .map_err(|e| crate::Error::Queue(e.to_string()))?;
    let others = queue_client::Entity::find()
        .filter(queue_client::Column::Role.eq(role.other().as_str()))
        .filter(queue_client::Column::SeenAt.gt(Utc::now() - LIVE_WITHIN))
        .all(db)
        .await?;
    if others.is_empty() || others.iter().any(|o| o.queue_epoch == mine) {
        return Ok(None);
    }
    let mine_location = location(queue);
    let mut theirs: Vec<&str> = others.iter().map(|o| o.queue_location.as_str()).collect();
    theirs.sort_unstable();
    theirs.dedup();
    if theirs == [mine_location.as_str()] {
        // The same path, another file: each host (or container) has a queue of its own.
        theirs = vec!["a file of the same name on another host or container"];
    }
    Ok(Some(format!(
        "the {} and the {} use different job queues, so jobs are never run: this {} uses {}, the running {} use {}; give both the same REDIS_URL, or the same QUEUE_SQLITE_URL on one host",
        role.as_str(),
        role.other().as_str(),
        role.as_str(),
        mine_location,
        match role.other() {
            Role::Api => "api processes",
            Role::Worker => "workers",
        },
        theirs.join(" and "),
    )))
}

/// Says loudly when api and worker do not share a queue: at once, then every few minutes while it
/// lasts, and once more when it is over.
#[derive(Default)]
pub struct MismatchLog {
    told: Option<std::time::Instant>,
}

impl MismatchLog {
    const REPEAT: std::time::Duration = std::time::Duration::from_secs(300);

    pub fn report(&mut self, problem: Option<&str>) {
        match (problem, self.told) {
            (Some(problem), told) if told.is_none_or(|at| at.elapsed() >= Self::REPEAT) => {
                tracing::error!("{problem}");
                self.told = Some(std::time::Instant::now());
            }
            (None, Some(_)) => {
                tracing::info!("api and worker now share one job queue");
                self.told = None;
            }
            _ => {}
        }
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
