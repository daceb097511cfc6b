//! The reconciler: re-derives from the database the work the queue owes and pushes it again.
//! Redis may lose everything (a restart without persistence, `FLUSHALL`, a worker killed with
//! jobs in flight); the database never forgets what was accepted (job-queue.md §5).

use std::time::Duration;

use domain::{job_requests, jobs::Job, patreon_tokens, sweeps};

use crate::{WorkerCtx, sweeper::reconcile_sweep};

/// Tokens expiring this soon get a *refresh token* job from the reconciler (sweeps refresh
/// further ahead; this catches whatever a sweep missed).
const REFRESH_WITHIN: chrono::Duration = chrono::Duration::days(3);
/// Token refreshes are looked for this often: a refresh job retries on its own, so the
/// reconciler only needs to notice what nothing else will.
const REFRESH_EVERY: Duration = Duration::from_secs(15 * 60);
const REFRESH_BATCH: u64 = 500;

/// How often the reconciler looks: a quarter of `JOB_LOST_AFTER_SECS`, between 1 s and 1 min.
pub fn interval(lost_after: chrono::Duration) -> Duration {
    (lost_after / 4)
        .to_std()
        .unwrap_or_default()
        .clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Runs for the life of the process: at start, then every [`interval`].
pub async fn run(ctx: WorkerCtx) {
    let lost_after = ctx.settings.job_lost_after;
    let mut tick = tokio::time::interval(interval(lost_after));
    let mut last_refresh_scan: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        reconcile_sweeps(&ctx, lost_after).await;
        match job_requests::repush_stale(&ctx.db, &ctx.queue, lost_after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(repushed = n, "rechecks with no news pushed again"),
            Err(e) => tracing::warn!(error = %e, "cannot re-push stale rechecks"),
        }
        match repush_webhooks(&ctx, lost_after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(repushed = n, "webhook events with no news pushed again"),
            Err(e) => tracing::warn!(error = %e, "cannot re-push webhook events"),
        }
        if last_refresh_scan.is_none_or(|at| at.elapsed() >= REFRESH_EVERY) {
            last_refresh_scan = Some(tokio::time::Instant::now());
            if let Err(e) = push_refreshes(&ctx).await {
                tracing::warn!(error = %e, "cannot queue token refreshes");
            }
        }
    }
}

async fn reconcile_sweeps(ctx: &WorkerCtx, lost_after: chrono::Duration) {
    match sweeps::unfinished(&ctx.db).await {
        Ok(open) => {
            for s in open {
                if let Err(e) = reconcile_sweep(ctx, s.id, lost_after).await {
                    tracing::warn!(sweep_id = s.id, error = %e, "sweep reconciliation failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list unfinished sweeps"),
    }
}

/// Queues a *refresh token* job for every member whose pair expires within [`REFRESH_WITHIN`].
pub async fn push_refreshes(ctx: &WorkerCtx) -> domain::Result<usize> {
    let due = patreon_tokens::expiring(&ctx.db, REFRESH_WITHIN, REFRESH_BATCH).await?;
    for &user_id in &due {
        let job = Job::RefreshToken {
            user_id,
            attempt: 0,
        };
        ctx.queue
            .push(job)
            .await
            .map_err(|e| domain::Error::Queue(e.to_string()))?;
    }
    if !due.is_empty() {
        tracing::info!(queued = due.len(), "token refreshes queued");
    }
    Ok(due.len())
}

/// Pushes again the webhook events still pending after `lost_after`.
async fn repush_webhooks(ctx: &WorkerCtx, lost_after: chrono::Duration) -> domain::Result<usize> {
    let stale = domain::webhooks::stale_pending(&ctx.db, lost_after).await?;
    for &event_id in &stale {
        ctx.queue
            .push(Job::ApplyWebhook { event_id })
            .await
            .map_err(|e| domain::Error::Queue(e.to_string()))?;
    }
    Ok(stale.len())
}
