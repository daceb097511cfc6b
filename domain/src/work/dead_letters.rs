//! Jobs that gave up (transient failures past the last attempt, or a permanent error): listed
//! for admins, and retried on request.

use chrono::{DateTime, Utc};
use entity::states::{CheckOutcome, ItemStatus, RequestStatus};
use entity::{job_request, sweep_item, user};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::work::jobs::JobQueue;
use crate::work::ledger::{items, push, requests};
use crate::{JobRequestId, PatreonUserId, Result, SweepId, UserId};

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
        .filter(job_request::Column::Status.eq(RequestStatus::Failed))
        .order_by_desc(job_request::Column::FinishedAt)
        .limit(limit)
        .find_also_related(user::Entity)
        .all(db)
        .await?;
    let items = sweep_item::Entity::find()
        .filter(sweep_item::Column::Status.eq(ItemStatus::Done))
        .filter(sweep_item::Column::Outcome.eq(CheckOutcome::Failed))
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

/// Puts a dead job back in the queue with a fresh attempt count (the ledger's **retry**).
/// `Ok(false)` when it is not dead (unknown, already retried, or the member has another open
/// request, which will run).
pub async fn retry(db: &impl ConnectionTrait, queue: &JobQueue, job: &DeadJobRef) -> Result<bool> {
    match job {
        DeadJobRef::Recheck { request_id } => {
            if !requests::retry(db, request_id).await?.moved() {
                return Ok(false);
            }
            let Some(request) = requests::find(db, request_id).await? else {
                return Ok(false);
            };
            queue.push(requests::job_for(&request)).await?;
            Ok(true)
        }
        DeadJobRef::SweepItem { sweep_id, user_id } => {
            if !items::retry(db, *sweep_id, *user_id).await?.moved() {
                return Ok(false);
            }
            push::push_pending_items(db, queue, *sweep_id, 1).await?;
            Ok(true)
        }
    }
}
