//! How much work is owed, for the metrics gauges. Reads only: the metrics module depends on
//! this file and on nothing else in `work` that could depend on it in turn.

use chrono::{DateTime, Utc};
use entity::states::{CheckOutcome, ItemStatus, RequestStatus};
use entity::{job_request, sweep, sweep_item};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::Result;
use crate::work::schedule::{SweepSchedule, tick_id};

/// What the database says is owed right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owed {
    /// Open rechecks plus the unfinished sweeps' items not done yet.
    pub jobs: u64,
    /// Work that gave up: failed rechecks and failed sweep items.
    pub dead: u64,
    /// Items the unfinished sweeps still owe.
    pub sweep_remaining: u64,
    /// How long the latest scheduled tick has gone without a finished sweep (0 when it has one).
    pub sweep_lag_seconds: i64,
}

/// Counts what is owed at `now`, `schedule` naming the tick whose sweep should have finished.
pub async fn owed(
    db: &impl ConnectionTrait,
    schedule: &SweepSchedule,
    now: DateTime<Utc>,
) -> Result<Owed> {
    let open_requests = job_request::Entity::find()
        .filter(job_request::Column::Status.is_in(RequestStatus::OPEN))
        .count(db)
        .await?;
    let failed_requests = job_request::Entity::find()
        .filter(job_request::Column::Status.eq(RequestStatus::Failed))
        .count(db)
        .await?;
    let sweep_remaining = sweep_item::Entity::find()
        .inner_join(sweep::Entity)
        .filter(sweep::Column::FinishedAt.is_null())
        .filter(sweep_item::Column::Status.ne(ItemStatus::Done))
        .count(db)
        .await?;
    let failed_items = sweep_item::Entity::find()
        .filter(sweep_item::Column::Outcome.eq(CheckOutcome::Failed))
        .count(db)
        .await?;
    Ok(Owed {
        jobs: open_requests + sweep_remaining,
        dead: failed_requests + failed_items,
        sweep_remaining,
        sweep_lag_seconds: sweep_lag(db, schedule, now).await?,
    })
}

async fn sweep_lag(
    db: &impl ConnectionTrait,
    schedule: &SweepSchedule,
    now: DateTime<Utc>,
) -> Result<i64> {
    let Some(tick) = schedule.latest_at_or_before(now) else {
        return Ok(0);
    };
    let finished = sweep::Entity::find()
        .filter(sweep::Column::Tick.eq(tick_id(tick)))
        .filter(sweep::Column::FinishedAt.is_not_null())
        .count(db)
        .await?;
    Ok(if finished > 0 {
        0
    } else {
        (now - tick).num_seconds()
    })
}
