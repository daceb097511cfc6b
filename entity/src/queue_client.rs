use sea_orm::entity::prelude::*;

/// A running api or worker process and the job queue it uses (refreshed while it runs).
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "queue_clients")]
pub struct Model {
    /// Random per process start.
    #[sea_orm(primary_key, auto_increment = false)]
    pub instance: String,
    /// `api` or `worker`.
    pub role: String,
    /// The id written into the queue itself: two processes share a queue when theirs match.
    pub queue_epoch: String,
    /// Where the queue is, for the message (a file path, or the Redis key prefix; no secret).
    pub queue_location: String,
    pub seen_at: DateTimeUtc,
}

impl ActiveModelBehavior for ActiveModel {}
