//! Jobs that gave up (transient failures past the last attempt, or a permanent error): listed
//! for admins, and retried on request.

use chrono::{DateTime, Utc};
use entity::{job_request, sweep, sweep_item, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};

use crate::work::jobs::JobQueue;
use crate::{Error, JobRequestId, PatreonUserId, Result, SweepId, UserId, work::sweeps};

/// Which record a dead job lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeadJobRef {
    /// A member's or admin's recheck (`job_requests`).
    Recheck { request_id: JobRequestId },
    /// One member's check within a sweep (`sweep_items`).
    SweepItem { sweep_id: SweepId, user_id: UserId },
}

#[derive(Clone, Debug)]
pub struct DeadJob {
    pub job: DeadJobRef,
    pub user_id: UserId,
    pub patreon_id: Option<PatreonUserId>,
    pub error: Option<String>,
    pub attempts: i32,
    pub failed_at: Option<DateTime<Utc>>,
}

/// The most recent dead jobs of both kinds, newest first, at most `limit` of each.
pub async fn list(db: &impl ConnectionTrait, limit: u64) -> Result<Vec<DeadJob>> {
    let requests = job_request::Entity::find()
        .filter(job_request::Column::Status.eq("failed"))
        .order_by_desc(job_request::Column::FinishedAt)
        .limit(limit)
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    let items = sweep_item::Entity::find()
        .filter(sweep_item::Column::Status.eq("done"))
        .filter(sweep_item::Column::Outcome.eq("failed"))
        .order_by_desc(sweep_item::Column::FinishedAt)
        .limit(limit)
        .all(db)
        .await?;
    let mut dead: Vec<DeadJob> = requests
        .into_iter()
        .map(|(r, u)| DeadJob {
            job: DeadJobRef::Recheck { request_id: r.id },
            user_id: r.user_id,
            patreon_id: u.map(|u| u.patreon_id),
            error: r.error,
            attempts: r.attempts,
            failed_at: r.finished_at,
        })
        .collect();
    for item in items {
        let patreon_id = user::Entity::find_by_id(item.user_id)
            .one(db)
            .await?
            .map(|u| u.patreon_id);
        dead.push(DeadJob {
            job: DeadJobRef::SweepItem {
                sweep_id: item.sweep_id,
                user_id: item.user_id,
            },
            user_id: item.user_id,
            patreon_id,
            error: item.error,
            attempts: item.attempts,
            failed_at: item.finished_at,
        });
    }
    dead.sort_by_key(|d| std::cmp::Reverse(d.failed_at));
    Ok(dead)
}

/// Puts a dead job back in the queue with a fresh attempt count. `Ok(false)` when it is not
/// dead (unknown, or already retried).
pub async fn retry(db: &impl ConnectionTrait, queue: &JobQueue, job: &DeadJobRef) -> Result<bool> {
    match job {
        DeadJobRef::Recheck { request_id } => {
            let Some(request) = job_request::Entity::find_by_id(request_id).one(db).await? else {
                return Ok(false);
            };
            let reopened = job_request::Entity::update_many()
                .col_expr(job_request::Column::Status, Expr::value("queued"))
                .col_expr(job_request::Column::Attempts, Expr::value(0))
                .col_expr(
                    job_request::Column::Error,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    job_request::Column::Result,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    job_request::Column::FinishedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(job_request::Column::Id.eq(request_id))
                .filter(job_request::Column::Status.eq("failed"))
                .exec(db)
                .await;
            match reopened {
                Ok(r) if r.rows_affected == 1 => {}
                Ok(_) => return Ok(false),
                // The member has another open request: that one will run.
                Err(e)
                    if matches!(
                        e.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            let job = crate::work::job_requests::job_for(&request);
            queue
                .push(job)
                .await
                .map_err(|e| Error::Queue(e.to_string()))?;
            Ok(true)
        }
        DeadJobRef::SweepItem { sweep_id, user_id } => {
            let reopened = sweep_item::Entity::update_many()
                .col_expr(sweep_item::Column::Status, Expr::value("pending"))
                .col_expr(sweep_item::Column::Attempts, Expr::value(0))
                .col_expr(
                    sweep_item::Column::Outcome,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(
                    sweep_item::Column::FinishedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(sweep_item::Column::SweepId.eq(*sweep_id))
                .filter(sweep_item::Column::UserId.eq(*user_id))
                .filter(sweep_item::Column::Outcome.eq("failed"))
                .exec(db)
                .await?;
            if reopened.rows_affected == 0 {
                return Ok(false);
            }
            // The sweep owes a check again, so it is not finished any more.
            sweep::Entity::update_many()
                .col_expr(
                    sweep::Column::FinishedAt,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(sweep::Column::Id.eq(*sweep_id))
                .exec(db)
                .await?;
            sweeps::push_pending(db, queue, *sweep_id, 1).await?;
            Ok(true)
        }
    }
}
