//! A sweep's items: queueing each member's check once, pushing again what the queue lost, and
//! each check's start, retries and outcome.

use chrono::{Duration, Utc};
use entity::{sweep, sweep_item};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use super::{DONE, PENDING, QUEUED, close_if_complete};
use crate::Result;
use crate::members::membership_checks::{self, CheckOutcome, CheckTrigger};
use crate::work::jobs::{Job, JobQueue};
use crate::{SweepId, UserId};

/// Pushes every item still `pending`, in batches of `batch`, marking each `queued` before its
/// push (a crash in between leaves it for [`repush_stale`], never doubled). Returns how many.
pub async fn push_pending(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: SweepId,
    batch: u64,
) -> Result<u64> {
    let mut pushed = 0;
    loop {
        let users: Vec<UserId> = sweep_item::Entity::find()
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
        let claimed: Vec<UserId> = sweep_item::Entity::update_many()
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

fn sweep_job(sweep_id: SweepId, user_id: UserId) -> Job {
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
    sweep_id: SweepId,
    older_than: Duration,
) -> Result<u64> {
    let cutoff = Utc::now() - older_than;
    let stale: Vec<UserId> = sweep_item::Entity::find()
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
async fn claim(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    from: &str,
) -> Result<bool> {
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
    sweep_id: SweepId,
    user_id: UserId,
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
    sweep_id: SweepId,
    user_id: UserId,
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
    sweep_id: SweepId,
    user_id: UserId,
) -> Result<Option<CheckOutcome>> {
    let Some(sweep) = sweep::Entity::find_by_id(sweep_id).one(db).await? else {
        return Ok(None);
    };
    membership_checks::succeeded_since(db, user_id, CheckTrigger::Sweep, sweep.started_at).await
}

/// A transient failure: the item stays queued (re-stamped) while its retry waits.
pub async fn retrying(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
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

/// Patreon rate limited the deployment: the item stays queued (re-stamped) for its deferred job,
/// and the attempt that just ran is not counted, since nothing about the member failed.
pub async fn give_back_attempt(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    error: &str,
) -> Result<()> {
    sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Error, Expr::value(error))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .col_expr(
            sweep_item::Column::Attempts,
            Expr::col(sweep_item::Column::Attempts).sub(1),
        )
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.eq(user_id))
        .filter(sweep_item::Column::Status.ne(DONE))
        .filter(sweep_item::Column::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Records how the member's check ended, and closes the sweep when it was the last one.
pub async fn finish_item(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
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
