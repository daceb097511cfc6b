//! Requests for a job someone waits for: recorded before the push, updated by the worker, read
//! by the status endpoint. At most one open request per member and kind.

use chrono::{DateTime, Duration, Utc};
use entity::job_request;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use crate::members::membership_checks::CheckTrigger;
use crate::work::jobs::{Job, JobQueue};
use crate::{JobRequestId, Result, UserId, infra::secrets};

pub const VERIFY_MEMBERSHIP: &str = "verify_membership";
const OPEN: [&str; 2] = ["queued", "running"];

/// What asking for a recheck came to.
pub enum Requested {
    /// A new request, to be pushed.
    New(job_request::Model),
    /// One is already queued or running: report that one instead.
    AlreadyOpen(job_request::Model),
    /// The member's last check finished too recently; try again after this long.
    TooSoon(Duration),
}

/// Records a verification request for `user_id`, unless one is open or the last one finished
/// less than `cooldown` ago. `requested_by` is the member or admin who asked; `None` for an
/// operator at the command line.
///
/// Parallel callers race to insert; the unique index on open requests lets one win, and the
/// others re-read and report that one, so a lost race is an answer, never an error.
pub async fn request_verification(
    db: &impl ConnectionTrait,
    user_id: UserId,
    requested_by: impl Into<Option<UserId>>,
    trigger: CheckTrigger,
    cooldown: Duration,
    now: DateTime<Utc>,
) -> Result<Requested> {
    let requested_by = requested_by.into();
    // The winner of a race may finish between our insert and our re-read; then we look again.
    const TRIES: usize = 3;
    for _ in 1..TRIES {
        let requested = try_request(db, user_id, requested_by, trigger, cooldown, now).await?;
        if let Some(requested) = requested {
            return Ok(requested);
        }
    }
    try_request(db, user_id, requested_by, trigger, cooldown, now)
        .await?
        .ok_or(crate::Error::Database(sea_orm::DbErr::RecordNotInserted))
}

/// How long a request must still wait after the last one finished at `finished`, if at all. No
/// cooldown means no wait, even when `finished` is after `now` (a check that ended between our
/// reading the clock and reading the database).
fn cooldown_left(
    cooldown: Duration,
    finished: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let since = now - finished;
    (cooldown > Duration::zero() && since < cooldown).then(|| cooldown - since)
}

/// One go at [`request_verification`]: `None` when another request became open between our
/// reads and our insert, and was gone again by the time we looked for it.
async fn try_request(
    db: &impl ConnectionTrait,
    user_id: UserId,
    requested_by: Option<UserId>,
    trigger: CheckTrigger,
    cooldown: Duration,
    now: DateTime<Utc>,
) -> Result<Option<Requested>> {
    let verifications = || {
        job_request::Entity::find()
            .filter(job_request::Column::UserId.eq(user_id))
            .filter(job_request::Column::Kind.eq(VERIFY_MEMBERSHIP))
            .order_by_desc(job_request::Column::CreatedAt)
    };
    // Any open check answers this request too, whoever asked for it.
    let open = || verifications().filter(job_request::Column::Status.is_in(OPEN));
    if let Some(open) = open().one(db).await? {
        return Ok(Some(Requested::AlreadyOpen(open)));
    }
    // The cooldown counts only finished requests of the same trigger: a webhook's recheck must
    // not use up the member's own "recheck my status", and one opened since we looked is no
    // reason to wait (our insert meets it below).
    let latest = verifications()
        .filter(job_request::Column::Trigger.eq(trigger.as_str()))
        .filter(job_request::Column::Status.is_not_in(OPEN))
        .one(db)
        .await?;
    if let Some(left) = latest.and_then(|latest| {
        cooldown_left(
            cooldown,
            latest.finished_at.unwrap_or(latest.created_at),
            now,
        )
    }) {
        return Ok(Some(Requested::TooSoon(left)));
    }
    let id = JobRequestId::from(secrets::random_id());
    let row = job_request::ActiveModel {
        id: Set(id.clone()),
        kind: Set(VERIFY_MEMBERSHIP.to_owned()),
        user_id: Set(user_id),
        requested_by: Set(requested_by),
        trigger: Set(trigger.as_str().to_owned()),
        status: Set("queued".to_owned()),
        result: Set(None),
        error: Set(None),
        attempts: Set(0),
        created_at: Set(now),
        started_at: Set(None),
        finished_at: Set(None),
    };
    // DO NOTHING rather than an error: inside a transaction PostgreSQL would abort it, and the
    // re-read below could not run. The target names the partial index `idx_job_requests_one_open`;
    // its predicate is literal SQL, as PostgreSQL matches it against the index's own.
    let one_open = OnConflict::columns([job_request::Column::UserId, job_request::Column::Kind])
        .target_and_where(Expr::cust("status IN ('queued', 'running')"))
        .do_nothing()
        .to_owned();
    let inserted = job_request::Entity::insert(row)
        .on_conflict(one_open)
        .exec_without_returning(db)
        .await?;
    Ok(match inserted {
        1 => find(db, &id).await?.map(Requested::New),
        _ => open().one(db).await?.map(Requested::AlreadyOpen),
    })
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
) -> Result<Option<job_request::Model>> {
    Ok(job_request::Entity::find_by_id(id).one(db).await?)
}

/// Marks the request running and counts the attempt; returns the attempt number (1 for the
/// first), or `None` if the request is gone or already finished (a duplicate delivery).
pub async fn start_attempt(db: &impl ConnectionTrait, id: &JobRequestId) -> Result<Option<i32>> {
    let started = job_request::Entity::update_many()
        .col_expr(job_request::Column::Status, Expr::value("running"))
        .col_expr(
            job_request::Column::Attempts,
            Expr::col(job_request::Column::Attempts).add(1),
        )
        .col_expr(job_request::Column::StartedAt, Expr::value(Utc::now()))
        .filter(job_request::Column::Id.eq(id))
        .filter(job_request::Column::Status.is_in(OPEN))
        .exec(db)
        .await?;
    if started.rows_affected == 0 {
        return Ok(None);
    }
    Ok(find(db, id).await?.map(|r| r.attempts))
}

/// Puts the request back in the queue after a transient failure, keeping the error for display.
pub async fn mark_retrying(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
) -> Result<()> {
    job_request::Entity::update_many()
        .col_expr(job_request::Column::Status, Expr::value("queued"))
        .col_expr(job_request::Column::Error, Expr::value(error))
        .filter(job_request::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Puts the request back in the queue without counting the attempt that just ran: Patreon
/// rate limited the deployment, which says nothing about this member.
pub async fn give_back_attempt(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
) -> Result<()> {
    job_request::Entity::update_many()
        .col_expr(job_request::Column::Status, Expr::value("queued"))
        .col_expr(job_request::Column::Error, Expr::value(error))
        .col_expr(
            job_request::Column::Attempts,
            Expr::col(job_request::Column::Attempts).sub(1),
        )
        .filter(job_request::Column::Id.eq(id))
        .filter(job_request::Column::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Records how the job ended: `Ok(result)` or `Err(error label)`.
pub async fn mark_finished(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    outcome: std::result::Result<&str, &str>,
) -> Result<()> {
    let (status, result, error) = match outcome {
        Ok(result) => ("succeeded", Some(result.to_owned()), None),
        Err(error) => ("failed", None, Some(error.to_owned())),
    };
    job_request::Entity::update_many()
        .col_expr(job_request::Column::Status, Expr::value(status))
        .col_expr(job_request::Column::Result, Expr::value(result))
        .col_expr(job_request::Column::Error, Expr::value(error))
        .col_expr(job_request::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(job_request::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Pushes the job of a new request. If the queue refuses it, the request is closed as
/// `queue_unavailable` (so the member is not left with an open request nobody runs) and
/// [`crate::Error::Queue`] says why.
pub async fn push(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    r: &job_request::Model,
) -> Result<()> {
    if let Err(e) = queue.push(job_for(r)).await {
        mark_finished(db, &r.id, Err("queue_unavailable")).await?;
        return Err(crate::Error::Queue(e.to_string()));
    }
    Ok(())
}

/// The job that carries request `r`.
pub fn job_for(r: &job_request::Model) -> Job {
    let trigger = [CheckTrigger::Admin, CheckTrigger::Webhook]
        .into_iter()
        .find(|t| t.as_str() == r.trigger)
        .unwrap_or(CheckTrigger::Member);
    Job::VerifyMembership {
        user_id: r.user_id,
        trigger,
        request_id: Some(r.id.clone()),
        sweep_id: None,
    }
}

/// Pushes again the open requests with no news for `lost_after` (queued and never started, or
/// started that long ago): the queue may have lost them. A job that was not lost meets the
/// request already finished, or the member's check lease, and does nothing.
pub async fn repush_stale(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    lost_after: Duration,
) -> Result<u64> {
    let cutoff = Utc::now() - lost_after;
    let stale = job_request::Entity::find()
        .filter(job_request::Column::Status.is_in(OPEN))
        .filter(
            Condition::any()
                .add(job_request::Column::StartedAt.lt(cutoff))
                .add(
                    Condition::all()
                        .add(job_request::Column::StartedAt.is_null())
                        .add(job_request::Column::CreatedAt.lt(cutoff)),
                ),
        )
        .limit(1000)
        .all(db)
        .await?;
    for r in &stale {
        queue
            .push(job_for(r))
            .await
            .map_err(|e| crate::Error::Queue(e.to_string()))?;
    }
    Ok(stale.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cooldown_never_waits_even_for_a_check_that_finished_after_our_clock_was_read() {
        let now = Utc::now();
        let later = now + Duration::milliseconds(5);
        assert_eq!(cooldown_left(Duration::zero(), later, now), None);
        assert_eq!(
            cooldown_left(Duration::minutes(1), now - Duration::seconds(20), now),
            Some(Duration::seconds(40))
        );
        assert_eq!(
            cooldown_left(Duration::minutes(1), now - Duration::minutes(2), now),
            None
        );
    }
}
