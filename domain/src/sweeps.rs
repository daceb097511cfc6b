//! Sweeps: every member re-verified, on a schedule or on demand. The `sweep_items` rows are the
//! record of what is owed, so the queue may lose anything: whatever is not `done` gets pushed
//! again. Pushing marks an item `queued` first, so a member is queued once per sweep.

use chrono::{DateTime, Duration, Utc};
use entity::{sweep, sweep_item, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use crate::Result;
use crate::jobs::{Job, JobQueue};
use crate::membership_checks::{self, CheckOutcome, CheckTrigger};

const PENDING: &str = "pending";
const QUEUED: &str = "queued";
const DONE: &str = "done";

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
    trigger: &str,
    now: DateTime<Utc>,
) -> Result<sweep::Model> {
    let txn = db.begin().await?;
    let row = sweep::ActiveModel {
        tick: Set(tick.to_owned()),
        trigger: Set(trigger.to_owned()),
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
        let owed = Query::select()
            .expr(Expr::val(sweep.id))
            .column(user::Column::Id)
            .expr(Expr::val(PENDING))
            .expr(Expr::val(0))
            .from(user::Entity)
            .to_owned();
        let fill = Query::insert()
            .into_table(sweep_item::Entity)
            .columns([
                sweep_item::Column::SweepId,
                sweep_item::Column::UserId,
                sweep_item::Column::Status,
                sweep_item::Column::Attempts,
            ])
            .select_from(owed)
            .map_err(|e| crate::Error::Database(sea_orm::DbErr::Custom(e.to_string())))?
            .to_owned();
        let total = txn.execute(&fill).await?.rows_affected();
        sweep::Entity::update_many()
            .col_expr(
                sweep::Column::Total,
                Expr::value(i64::try_from(total).unwrap_or(i64::MAX)),
            )
            .filter(sweep::Column::Id.eq(sweep.id))
            .exec(&txn)
            .await?;
        tracing::info!(sweep_id = sweep.id, tick, total, "sweep started");
    }
    txn.commit().await?;
    Ok(sweep::Entity::find_by_id(sweep.id)
        .one(db)
        .await?
        .unwrap_or(sweep))
}

/// Pushes every item still `pending`, in batches of `batch`, marking each `queued` before its
/// push (a crash in between leaves it for [`repush_stale`], never doubled). Returns how many.
pub async fn push_pending(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: i64,
    batch: u64,
) -> Result<u64> {
    let mut pushed = 0;
    loop {
        let users: Vec<i64> = sweep_item::Entity::find()
            .select_only()
            .column(sweep_item::Column::UserId)
            .filter(sweep_item::Column::SweepId.eq(sweep_id))
            .filter(sweep_item::Column::Status.eq(PENDING))
            .order_by_asc(sweep_item::Column::UserId)
            .limit(batch)
            .into_tuple()
            .all(db)
            .await?;
        if users.is_empty() {
            return Ok(pushed);
        }
        // One statement claims the batch; only the rows this call moved are pushed, so two
        // reconcilers never push the same item twice.
        let claimed: Vec<i64> = sweep_item::Entity::update_many()
            .col_expr(sweep_item::Column::Status, Expr::value(QUEUED))
            .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
            .filter(sweep_item::Column::SweepId.eq(sweep_id))
            .filter(sweep_item::Column::UserId.is_in(users))
            .filter(sweep_item::Column::Status.eq(PENDING))
            .exec_with_returning(db)
            .await?
            .into_iter()
            .map(|item| item.user_id)
            .collect();
        let jobs = claimed
            .iter()
            .map(|&user_id| sweep_job(sweep_id, user_id))
            .collect();
        if let Err(e) = queue.push_many(jobs).await {
            // Back to pending, so the next round pushes them; the error is the caller's.
            sweep_item::Entity::update_many()
                .col_expr(sweep_item::Column::Status, Expr::value(PENDING))
                .filter(sweep_item::Column::SweepId.eq(sweep_id))
                .filter(sweep_item::Column::UserId.is_in(claimed))
                .exec(db)
                .await?;
            return Err(crate::Error::Queue(e.to_string()));
        }
        pushed += claimed.len() as u64;
    }
}

fn sweep_job(sweep_id: i64, user_id: i64) -> Job {
    Job::VerifyMembership {
        user_id,
        trigger: CheckTrigger::Sweep,
        request_id: None,
        sweep_id: Some(sweep_id),
    }
}

/// Pushes again the items queued longer than `older_than` ago without finishing: their job was
/// lost (a Redis restart, a killed worker before it recorded anything).
pub async fn repush_stale(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: i64,
    older_than: Duration,
) -> Result<u64> {
    let cutoff = Utc::now() - older_than;
    let stale: Vec<i64> = sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::UserId)
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.eq(QUEUED))
        .filter(sweep_item::Column::PushedAt.lt(cutoff))
        .into_tuple()
        .all(db)
        .await?;
    let mut pushed = 0;
    for user_id in stale {
        if claim(db, sweep_id, user_id, QUEUED).await? {
            push(db, queue, sweep_id, user_id).await?;
            pushed += 1;
        }
    }
    Ok(pushed)
}

/// Moves one item from `from` to `queued` (stamping the push time); false if someone else did.
async fn claim(db: &impl ConnectionTrait, sweep_id: i64, user_id: i64, from: &str) -> Result<bool> {
    let claimed = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(QUEUED))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.eq(user_id))
        .filter(sweep_item::Column::Status.eq(from))
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

async fn push(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: i64,
    user_id: i64,
) -> Result<()> {
    if let Err(e) = queue.push(sweep_job(sweep_id, user_id)).await {
        // Back to pending, so the next round pushes it; the error is the caller's to report.
        sweep_item::Entity::update_many()
            .col_expr(sweep_item::Column::Status, Expr::value(PENDING))
            .filter(sweep_item::Column::SweepId.eq(sweep_id))
            .filter(sweep_item::Column::UserId.eq(user_id))
            .exec(db)
            .await?;
        return Err(crate::Error::Queue(e.to_string()));
    }
    Ok(())
}

/// Counts the attempt of a job about to run; `None` when the item is already done (a duplicate
/// delivery, or an earlier attempt whose check was recorded but not its item) or gone. Call it
/// under the member's check lease.
pub async fn start_attempt(
    db: &impl ConnectionTrait,
    sweep_id: i64,
    user_id: i64,
) -> Result<Option<i32>> {
    let started = sweep_item::Entity::update_many()
        .col_expr(
            sweep_item::Column::Attempts,
            Expr::col(sweep_item::Column::Attempts).add(1),
        )
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.eq(user_id))
        .filter(sweep_item::Column::Status.ne(DONE))
        .exec(db)
        .await?;
    if started.rows_affected == 0 {
        return Ok(None);
    }
    let Some(item) = sweep_item::Entity::find_by_id((sweep_id, user_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if item.attempts > 1
        && let Some(outcome) = checked_since_start(db, sweep_id, user_id).await?
    {
        // An earlier attempt checked the member, then lost the database before marking the
        // item done: that check is this sweep's, and Patreon is not asked twice.
        finish_item(db, sweep_id, user_id, outcome.as_str(), None).await?;
        return Ok(None);
    }
    Ok(Some(item.attempts))
}

/// How `user_id`'s latest successful sweep check since `sweep_id` started came out, if any.
async fn checked_since_start(
    db: &impl ConnectionTrait,
    sweep_id: i64,
    user_id: i64,
) -> Result<Option<CheckOutcome>> {
    let Some(sweep) = sweep::Entity::find_by_id(sweep_id).one(db).await? else {
        return Ok(None);
    };
    membership_checks::succeeded_since(db, user_id, CheckTrigger::Sweep, sweep.started_at).await
}

/// A transient failure: the item stays queued (re-stamped) while its retry waits.
pub async fn retrying(
    db: &impl ConnectionTrait,
    sweep_id: i64,
    user_id: i64,
    error: &str,
) -> Result<()> {
    sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Error, Expr::value(error))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records how the member's check ended, and closes the sweep when it was the last one.
pub async fn finish_item(
    db: &impl ConnectionTrait,
    sweep_id: i64,
    user_id: i64,
    outcome: &str,
    error: Option<&str>,
) -> Result<()> {
    let now = Utc::now();
    sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(DONE))
        .col_expr(sweep_item::Column::Outcome, Expr::value(outcome))
        .col_expr(sweep_item::Column::Error, Expr::value(error))
        .col_expr(sweep_item::Column::FinishedAt, Expr::value(now))
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    close_if_complete(db, sweep_id).await?;
    Ok(())
}

/// Marks the sweep finished once nothing is owed (also for a sweep of zero members).
pub async fn close_if_complete(db: &impl ConnectionTrait, sweep_id: i64) -> Result<bool> {
    let open = sweep_item::Entity::find()
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.ne(DONE))
        .count(db)
        .await?;
    if open > 0 {
        return Ok(false);
    }
    let closed = sweep::Entity::update_many()
        .col_expr(sweep::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(sweep::Column::Id.eq(sweep_id))
        .filter(sweep::Column::FinishedAt.is_null())
        .exec(db)
        .await?;
    if closed.rows_affected == 1 {
        tracing::info!(sweep_id, "sweep finished");
    }
    Ok(true)
}

pub async fn progress(db: &impl ConnectionTrait, sweep_id: i64) -> Result<Progress> {
    let total = sweep::Entity::find_by_id(sweep_id)
        .one(db)
        .await?
        .map_or(0, |s| u64::try_from(s.total).unwrap_or(0));
    let counts: Vec<(Option<String>, i64)> = sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::Outcome)
        .column_as(sweep_item::Column::UserId.count(), "n")
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.eq(DONE))
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
        match outcome.as_deref() {
            Some("verified") => p.verified += n,
            Some("changed") => p.changed += n,
            Some("skipped") => p.skipped += n,
            _ => p.failed += n,
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
    trigger: &str,
    now: DateTime<Utc>,
) -> Result<ManualSweep> {
    if let Some(running) = unfinished(db).await?.into_iter().next() {
        return Ok(ManualSweep::AlreadyRunning(running));
    }
    let sweep = start(db, &format!("manual-{}", now.to_rfc3339()), trigger, now).await?;
    queue
        .push(Job::Sweep { sweep_id: sweep.id })
        .await
        .map_err(|e| crate::Error::Queue(e.to_string()))?;
    Ok(ManualSweep::Started(sweep))
}

pub async fn find(db: &impl ConnectionTrait, sweep_id: i64) -> Result<Option<sweep::Model>> {
    Ok(sweep::Entity::find_by_id(sweep_id).one(db).await?)
}
