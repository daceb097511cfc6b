//! Sweeps: every member re-verified, on a schedule or on demand. The `sweep_items` rows are the
//! record of what is owed, so the queue may lose anything: whatever is not `done` gets pushed
//! again. Their states move only in [`crate::work::ledger::items`].

use chrono::{DateTime, Utc};
use entity::states::{CheckOutcome, ItemStatus, SweepTrigger};
use entity::{sweep, sweep_item};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, OnConflict},
};

use crate::Result;
use crate::SweepId;
use crate::work::jobs::{Job, JobQueue};
use crate::work::ledger::items;

/// Where a sweep stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub total: u64,
    pub done: u64,
    pub verified: u64,
    pub changed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Progress {
    pub fn is_complete(&self) -> bool {
        self.done >= self.total
    }
}

/// Starts the sweep for `tick` (once, whoever calls first) and records every member as owed a
/// check, in one transaction and one statement: no member list is held in memory.
pub async fn start(
    db: &DatabaseConnection,
    tick: &str,
    trigger: SweepTrigger,
    now: DateTime<Utc>,
) -> Result<sweep::Model> {
    let txn = crate::infra::db::begin_write(db).await?;
    let row = sweep::ActiveModel {
        tick: Set(tick.to_owned()),
        trigger: Set(trigger),
        started_at: Set(now),
        finished_at: Set(None),
        total: Set(0),
        ..Default::default()
    };
    let inserted = sweep::Entity::insert(row)
        .on_conflict(
            OnConflict::column(sweep::Column::Tick)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let sweep = sweep::Entity::find()
        .filter(sweep::Column::Tick.eq(tick))
        .one(&txn)
        .await?;
    let sweep = sweep.ok_or(crate::Error::Database(sea_orm::DbErr::RecordNotFound(
        "sweep".into(),
    )))?;
    if inserted == 1 {
        let total = items::owe_everyone(&txn, sweep.id).await?;
        sweep::Entity::update_many()
            .col_expr(
                sweep::Column::Total,
                Expr::value(i64::try_from(total).unwrap_or(i64::MAX)),
            )
            .filter(sweep::Column::Id.eq(sweep.id))
            .exec(&txn)
            .await?;
        tracing::info!(sweep_id = i64::from(sweep.id), tick, total, "sweep started");
    }
    txn.commit().await?;
    Ok(sweep::Entity::find_by_id(sweep.id)
        .one(db)
        .await?
        .unwrap_or(sweep))
}

pub async fn progress(db: &impl ConnectionTrait, sweep_id: SweepId) -> Result<Progress> {
    let total = sweep::Entity::find_by_id(sweep_id)
        .one(db)
        .await?
        .map_or(0, |s| u64::try_from(s.total).unwrap_or(0));
    let counts: Vec<(Option<CheckOutcome>, i64)> = sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::Outcome)
        .column_as(sweep_item::Column::UserId.count(), "n")
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Done))
        .group_by(sweep_item::Column::Outcome)
        .into_tuple()
        .all(db)
        .await?;
    let mut p = Progress {
        total,
        ..Progress::default()
    };
    for (outcome, n) in counts {
        let n = u64::try_from(n).unwrap_or(0);
        p.done += n;
        // A done item always has an outcome; one without is counted as failed.
        match outcome {
            Some(CheckOutcome::Verified) => p.verified += n,
            Some(CheckOutcome::Changed) => p.changed += n,
            Some(CheckOutcome::Skipped) => p.skipped += n,
            Some(CheckOutcome::Failed) | None => p.failed += n,
        }
    }
    Ok(p)
}

/// Sweeps not finished yet, oldest first (the reconciler's work list).
pub async fn unfinished(db: &impl ConnectionTrait) -> Result<Vec<sweep::Model>> {
    Ok(sweep::Entity::find()
        .filter(sweep::Column::FinishedAt.is_null())
        .order_by_asc(sweep::Column::Id)
        .all(db)
        .await?)
}

/// The most recent sweeps, newest first.
pub async fn recent(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<sweep::Model>> {
    Ok(sweep::Entity::find()
        .order_by_desc(sweep::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// What asking for a sweep now came to.
pub enum ManualSweep {
    /// A new sweep; its fan-out is queued.
    Started(sweep::Model),
    /// A sweep is still running: that one, instead of a second.
    AlreadyRunning(sweep::Model),
}

/// Starts a sweep now unless one is running, and queues its fan-out (a *sweep* job, so the
/// caller does not wait for thousands of pushes).
pub async fn start_manual(
    db: &DatabaseConnection,
    queue: &JobQueue,
    trigger: SweepTrigger,
    now: DateTime<Utc>,
) -> Result<ManualSweep> {
    if let Some(running) = unfinished(db).await?.into_iter().next() {
        return Ok(ManualSweep::AlreadyRunning(running));
    }
    let sweep = start(db, &format!("manual-{}", now.to_rfc3339()), trigger, now).await?;
    queue.push(Job::Sweep { sweep_id: sweep.id }).await?;
    Ok(ManualSweep::Started(sweep))
}

pub async fn find(db: &impl ConnectionTrait, sweep_id: SweepId) -> Result<Option<sweep::Model>> {
    Ok(sweep::Entity::find_by_id(sweep_id).one(db).await?)
}
