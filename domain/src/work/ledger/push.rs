//! Pushing owed work: a recheck recorded and pushed in one call, a sweep's items pushed once,
//! and whatever the queue lost pushed again. A row is always written (or claimed) before its
//! job is pushed, and a refused push leaves the row as it was owed.

use chrono::{Duration, Utc};
use entity::job_request;
use entity::states::CheckTrigger;
use sea_orm::ConnectionTrait;

use super::requests::{self, Requested};
use super::{deliveries, items};
use crate::work::jobs::{Job, JobQueue};
use crate::{Result, SweepId, UserId};

/// Records a recheck of `user_id` and pushes it: the one way the api, the dashboard and the CLI
/// ask for a check. Answers with the new request, the one already open, or how long the
/// cooldown still runs. If the queue refuses the push, the new request is given up as
/// `queue_unavailable` (nobody is left waiting on a request nobody runs) and
/// [`Error::Queue`] says why.
pub async fn request_recheck(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    user_id: UserId,
    trigger: CheckTrigger,
    requested_by: Option<UserId>,
    cooldown: Duration,
) -> Result<Requested> {
    let requested =
        requests::request(db, user_id, requested_by, trigger, cooldown, Utc::now()).await?;
    if let Requested::New(request) = &requested {
        push_request(db, queue, request).await?;
    }
    Ok(requested)
}

/// Pushes the job of a recorded request (one written inside a transaction is pushed after its
/// commit). If the queue refuses it, the request is given up as `queue_unavailable`.
pub async fn push_request(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    request: &job_request::Model,
) -> Result<()> {
    if let Err(e) = queue.push(requests::job_for(request)).await {
        let _ = requests::give_up(db, &request.id, "queue_unavailable").await?;
        return Err(e.into());
    }
    Ok(())
}

/// Pushes again the open requests with no news for `lost_after`. A job that was not lost meets
/// the request already finished, or the member's check lease, and does nothing.
pub async fn repush_stale_requests(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    lost_after: Duration,
) -> Result<u64> {
    let stale = requests::stale(db, lost_after).await?;
    for request in &stale {
        queue.push(requests::job_for(request)).await?;
    }
    Ok(stale.len() as u64)
}

/// The job of one member's check within sweep `sweep_id`.
fn item_job(sweep_id: SweepId, user_id: UserId) -> Job {
    Job::VerifyMembership {
        user_id,
        trigger: CheckTrigger::Sweep,
        request_id: None,
        sweep_id: Some(sweep_id),
    }
}

/// Pushes every item of sweep `sweep_id` still `pending`, in batches of `batch`, claiming each
/// before its push (a crash in between leaves it for [`repush_stale_items`], never doubled).
/// Returns how many.
pub async fn push_pending_items(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: SweepId,
    batch: u64,
) -> Result<u64> {
    let mut pushed = 0;
    loop {
        let claimed = items::claim_pending(db, sweep_id, batch).await?;
        if claimed.is_empty() {
            return Ok(pushed);
        }
        let jobs = claimed.iter().map(|&u| item_job(sweep_id, u)).collect();
        if let Err(e) = queue.push_many(jobs).await {
            let _ = items::unclaim(db, sweep_id, claimed).await?;
            return Err(e.into());
        }
        pushed += claimed.len() as u64;
    }
}

/// Pushes again the items of sweep `sweep_id` queued longer than `older_than` ago without
/// finishing: their job was lost.
pub async fn repush_stale_items(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    sweep_id: SweepId,
    older_than: Duration,
) -> Result<u64> {
    let mut pushed = 0;
    for user_id in items::stale(db, sweep_id, older_than).await? {
        if !items::reclaim(db, sweep_id, user_id).await?.moved() {
            continue;
        }
        if let Err(e) = queue.push(item_job(sweep_id, user_id)).await {
            let _ = items::unclaim(db, sweep_id, vec![user_id]).await?;
            return Err(e.into());
        }
        pushed += 1;
    }
    Ok(pushed)
}

/// Pushes again the deliveries still pending after `lost_after`.
pub async fn repush_pending_deliveries(
    db: &impl ConnectionTrait,
    queue: &JobQueue,
    lost_after: Duration,
) -> Result<u64> {
    let stale = deliveries::stale_pending(db, lost_after).await?;
    for &event_id in &stale {
        queue.push(Job::ApplyWebhook { event_id }).await?;
    }
    Ok(stale.len() as u64)
}
