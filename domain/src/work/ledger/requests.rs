//! Rechecks someone waits for (`job_requests`): recorded before the push, moved by the verify
//! job, read by the status endpoint. At most one open (`queued` or `running`) request per member
//! and kind. The transitions are listed in the [ledger](super).

use chrono::{DateTime, Duration, Utc};
use entity::job_request;
use entity::states::{CheckTrigger, RequestKind, RequestStatus};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict},
};

use super::Transition;
use crate::work::jobs::Job;
use crate::{JobRequestId, Result, UserId, infra::secrets};

const OPEN: [RequestStatus; 2] = RequestStatus::OPEN;

/// What asking for a recheck came to.
#[derive(Debug)]
pub enum Requested {
    /// A new request, to be pushed.
    New(job_request::Model),
    /// One is already queued or running: report that one instead.
    AlreadyOpen(job_request::Model),
    /// The member's last check finished too recently; try again after this long.
    TooSoon(Duration),
}

/// **request**: records a verification request for `user_id`, unless one is open or the last
/// one of the same trigger finished less than `cooldown` ago. `requested_by` is the member or
/// admin who asked; `None` for an operator or the service itself. Pushing is the caller's
/// (`ledger::push::request_recheck` does both).
///
/// Parallel callers race to insert; the unique index on open requests lets one win, and the
/// others re-read and report that one, so a lost race is an answer, never an error.
pub async fn request(
    db: &impl ConnectionTrait,
    user_id: UserId,
    requested_by: Option<UserId>,
    trigger: CheckTrigger,
    cooldown: Duration,
    now: DateTime<Utc>,
) -> Result<Requested> {
    let asked = Ask {
        user_id,
        requested_by,
        trigger,
        cooldown,
        now,
    };
    // The winner of a race may finish between our insert and our re-read; then we look again.
    const TRIES: usize = 3;
    for _ in 1..TRIES {
        if let Some(requested) = try_request(db, &asked).await? {
            return Ok(requested);
        }
    }
    try_request(db, &asked)
        .await?
        .ok_or(crate::Error::Database(sea_orm::DbErr::RecordNotInserted))
}

struct Ask {
    user_id: UserId,
    requested_by: Option<UserId>,
    trigger: CheckTrigger,
    cooldown: Duration,
    now: DateTime<Utc>,
}

/// How long a request must still wait after the last one finished at `finished`, if at all. No
/// cooldown means no wait, even when `finished` is after `now` (a check that ended between our
/// reading the clock and reading the database).
pub(super) fn cooldown_left(
    cooldown: Duration,
    finished: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let since = now - finished;
    (cooldown > Duration::zero() && since < cooldown).then(|| cooldown - since)
}

/// One go at [`request`]: `None` when another request became open between our reads and our
/// insert, and was gone again by the time we looked for it.
async fn try_request(db: &impl ConnectionTrait, ask: &Ask) -> Result<Option<Requested>> {
    let verifications = || {
        job_request::Entity::find()
            .filter(job_request::Column::UserId.eq(ask.user_id))
            .filter(job_request::Column::Kind.eq(RequestKind::VerifyMembership))
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
        .filter(job_request::Column::Trigger.eq(ask.trigger))
        .filter(job_request::Column::Status.is_not_in(OPEN))
        .one(db)
        .await?;
    if let Some(left) = latest.and_then(|latest| {
        let finished = latest.finished_at.unwrap_or(latest.created_at);
        cooldown_left(ask.cooldown, finished, ask.now)
    }) {
        return Ok(Some(Requested::TooSoon(left)));
    }
    let id = JobRequestId::from(secrets::random_id());
    let inserted = insert_queued(db, &id, ask).await?;
    Ok(match inserted {
        1 => find(db, &id).await?.map(Requested::New),
        _ => open().one(db).await?.map(Requested::AlreadyOpen),
    })
}

/// Inserts request `id` as `queued`; 0 rows when the member already has an open one.
async fn insert_queued(db: &impl ConnectionTrait, id: &JobRequestId, ask: &Ask) -> Result<u64> {
    let row = job_request::ActiveModel {
        id: Set(id.clone()),
        kind: Set(RequestKind::VerifyMembership),
        user_id: Set(ask.user_id),
        requested_by: Set(ask.requested_by),
        trigger: Set(ask.trigger),
        status: Set(RequestStatus::Queued),
        result: Set(None),
        error: Set(None),
        attempts: Set(0),
        created_at: Set(ask.now),
        started_at: Set(None),
        finished_at: Set(None),
    };
    // DO NOTHING rather than an error: inside a transaction PostgreSQL would abort it, and the
    // re-read could not run. The target names the partial index `idx_job_requests_one_open`;
    // its predicate is literal SQL, as PostgreSQL matches it against the index's own.
    let one_open = OnConflict::columns([job_request::Column::UserId, job_request::Column::Kind])
        .target_and_where(Expr::cust("status IN ('queued', 'running')"))
        .do_nothing()
        .to_owned();
    Ok(job_request::Entity::insert(row)
        .on_conflict(one_open)
        .exec_without_returning(db)
        .await?)
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
) -> Result<Option<job_request::Model>> {
    Ok(job_request::Entity::find_by_id(id).one(db).await?)
}

/// **start**: marks the request running and counts the attempt; returns the attempt number (1
/// for the first), or `None` if the request is gone or already finished (a duplicate delivery).
pub async fn start(db: &impl ConnectionTrait, id: &JobRequestId) -> Result<Option<i32>> {
    let started = job_request::Entity::update_many()
        .col_expr(
            job_request::Column::Status,
            Expr::value(RequestStatus::Running),
        )
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

/// **retry_later**: a transient failure; the request is queued again (its retry is pushed with
/// backoff), keeping the error for display.
pub async fn retry_later(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
) -> Result<Transition> {
    requeue(db, id, error, false).await
}

/// **defer**: queued again without counting the attempt that just ran: Patreon rate limited
/// the deployment, which says nothing about this member.
pub async fn defer(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
) -> Result<Transition> {
    requeue(db, id, error, true).await
}

/// Running back to queued, keeping `error` for display; `give_back` uncounts the attempt.
async fn requeue(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
    give_back: bool,
) -> Result<Transition> {
    let mut update = job_request::Entity::update_many()
        .col_expr(
            job_request::Column::Status,
            Expr::value(RequestStatus::Queued),
        )
        .col_expr(job_request::Column::Error, Expr::value(error))
        .filter(job_request::Column::Id.eq(id))
        .filter(job_request::Column::Status.eq(RequestStatus::Running));
    if give_back {
        update = update
            .col_expr(
                job_request::Column::Attempts,
                Expr::col(job_request::Column::Attempts).sub(1),
            )
            .filter(job_request::Column::Attempts.gt(0));
    }
    let moved = update.exec(db).await?;
    Ok(Transition::from_rows(moved.rows_affected))
}

/// **succeed**: the check ran; `result` is what it found (e.g. `paying_member`).
pub async fn succeed(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    result: &str,
) -> Result<Transition> {
    finish(db, id, RequestStatus::Succeeded, Some(result), None).await
}

/// **give_up**: a permanent error, the last attempt failed, or the queue refused the push;
/// `error` says which. Listed as a dead job until an admin retries it.
pub async fn give_up(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    error: &str,
) -> Result<Transition> {
    finish(db, id, RequestStatus::Failed, None, Some(error)).await
}

async fn finish(
    db: &impl ConnectionTrait,
    id: &JobRequestId,
    status: RequestStatus,
    result: Option<&str>,
    error: Option<&str>,
) -> Result<Transition> {
    let finished = job_request::Entity::update_many()
        .col_expr(job_request::Column::Status, Expr::value(status))
        .col_expr(job_request::Column::Result, Expr::value(result))
        .col_expr(job_request::Column::Error, Expr::value(error))
        .col_expr(job_request::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(job_request::Column::Id.eq(id))
        .filter(job_request::Column::Status.is_in(OPEN))
        .exec(db)
        .await?;
    Ok(Transition::from_rows(finished.rows_affected))
}

/// **retry**: an admin retries a dead (`failed`) request with a fresh attempt count. Unmoved
/// when it is not dead, or when the member has another open request (that one will run).
pub async fn retry(db: &impl ConnectionTrait, id: &JobRequestId) -> Result<Transition> {
    let none = Option::<String>::None;
    let reopened = job_request::Entity::update_many()
        .col_expr(
            job_request::Column::Status,
            Expr::value(RequestStatus::Queued),
        )
        .col_expr(job_request::Column::Attempts, Expr::value(0))
        .col_expr(job_request::Column::Error, Expr::value(none.clone()))
        .col_expr(job_request::Column::Result, Expr::value(none))
        .col_expr(
            job_request::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(job_request::Column::Id.eq(id))
        .filter(job_request::Column::Status.eq(RequestStatus::Failed))
        .exec(db)
        .await;
    match reopened {
        Ok(r) => Ok(Transition::from_rows(r.rows_affected)),
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            Ok(Transition::Unmoved)
        }
        Err(e) => Err(e.into()),
    }
}

/// Open requests with no news for `lost_after` (queued and never started, or started that long
/// ago): the queue may have lost their job.
pub async fn stale(
    db: &impl ConnectionTrait,
    lost_after: Duration,
) -> Result<Vec<job_request::Model>> {
    let cutoff = Utc::now() - lost_after;
    let silent = Condition::any()
        .add(job_request::Column::StartedAt.lt(cutoff))
        .add(
            Condition::all()
                .add(job_request::Column::StartedAt.is_null())
                .add(job_request::Column::CreatedAt.lt(cutoff)),
        );
    Ok(job_request::Entity::find()
        .filter(job_request::Column::Status.is_in(OPEN))
        .filter(silent)
        .limit(1000)
        .all(db)
        .await?)
}

/// The job that carries request `r`.
pub fn job_for(r: &job_request::Model) -> Job {
    match r.kind {
        RequestKind::VerifyMembership => Job::VerifyMembership {
            user_id: r.user_id,
            trigger: r.trigger,
            request_id: Some(r.id.clone()),
            sweep_id: None,
        },
    }
}
