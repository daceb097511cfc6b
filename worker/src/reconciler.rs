//! The reconciler: re-derives from the database the work the queue owes and pushes it again.
//! Redis may lose everything (a restart without persistence, `FLUSHALL`, a worker killed with
//! jobs in flight); the database never forgets what was accepted (docs/job-queue.md §5). It also
//! notices a queue that lost everything at once (its epoch changed) and pushes everything owed
//! within seconds, keeps the queue trimmed, and says when the api uses another queue.

use std::time::Duration;

use domain::{
    infra::metrics::{QueueStateLabels, metrics},
    patreon::tokens,
    work::jobs::Job,
    work::ledger::push,
    work::queue_identity::{self, MismatchLog, QueueWatch, Role},
    work::queue_trim,
    work::sweeps,
};

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

/// How often the worker asks the queue whether it still holds what was pushed (its epoch).
pub const QUEUE_LOOK_EVERY: Duration = Duration::from_secs(2);
/// How often it checks that the api pushes to the queue it takes from.
const MISMATCH_EVERY: Duration = Duration::from_secs(10);
/// How often finished jobs are trimmed (every pass when `QUEUE_RETENTION_HOURS=0`).
const TRIM_EVERY: Duration = Duration::from_secs(10 * 60);

/// Runs for the life of the process: at start, then every [`interval`], and at once whenever
/// the queue turns out to have lost what it held.
pub async fn run(ctx: WorkerCtx) {
    let lost_after = ctx.settings.job_lost_after;
    let pass_every = interval(lost_after);
    let mut tick = tokio::time::interval(QUEUE_LOOK_EVERY);
    let mut loss = LossDetector::default();
    let mut mismatch_log = MismatchLog::default();
    let mut last_mismatch_check: Option<tokio::time::Instant> = None;
    let mut last_pass: Option<tokio::time::Instant> = None;
    let mut last_refresh_scan: Option<tokio::time::Instant> = None;
    let mut last_trim: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let lost = loss.queue_was_lost(&ctx).await;
        if last_mismatch_check.is_none_or(|at| at.elapsed() >= MISMATCH_EVERY) {
            last_mismatch_check = Some(tokio::time::Instant::now());
            match queue_identity::mismatch(&ctx.db, Role::Worker, &ctx.queue).await {
                Ok(problem) => mismatch_log.report(problem.as_deref()),
                Err(e) => tracing::debug!(error = %e, "cannot compare queues with the api"),
            }
        }
        if !lost && last_pass.is_some_and(|at| at.elapsed() < pass_every) {
            continue;
        }
        last_pass = Some(tokio::time::Instant::now());
        // After a loss nothing queued is still in the queue: everything owed goes again now.
        let lost_after = if lost {
            chrono::Duration::zero()
        } else {
            lost_after
        };
        reconcile_sweeps(&ctx, lost_after).await;
        match push::repush_stale_requests(&ctx.db, &ctx.queue, lost_after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(repushed = n, "rechecks with no news pushed again"),
            Err(e) => tracing::warn!(error = %e, "cannot re-push stale rechecks"),
        }
        match push::repush_pending_deliveries(&ctx.db, &ctx.queue, lost_after).await {
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
        tidy_queue(&ctx, &mut last_trim).await;
    }
}

/// Notices when the queue lost everything it held: its epoch changed since this process (or,
/// at start, the deployment's workers) last looked. Also records which queue this worker uses.
#[derive(Default)]
pub struct LossDetector {
    watch: Option<QueueWatch>,
}

impl LossDetector {
    pub async fn queue_was_lost(&mut self, ctx: &WorkerCtx) -> bool {
        if self.watch.is_none() {
            match QueueWatch::start(&ctx.db, Role::Worker, &ctx.queue).await {
                Ok(watch) => self.watch = Some(watch),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot read which queue workers used");
                    return false;
                }
            }
        }
        let Some(watch) = self.watch.as_mut() else {
            return false;
        };
        match watch.look(&ctx.db, &ctx.queue).await {
            Ok(true) => {
                tracing::warn!(
                    "the job queue lost what it held (emptied or restarted); pushing everything owed again now"
                );
                true
            }
            Ok(false) => false,
            // The queue or the database is away: the job workers' restarts say so already.
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the queue's epoch");
                false
            }
        }
    }
}

/// Trims finished jobs past `QUEUE_RETENTION_HOURS` and counts what the queue holds.
async fn tidy_queue(ctx: &WorkerCtx, last_trim: &mut Option<tokio::time::Instant>) {
    let retention = ctx.settings.queue_retention;
    if retention.is_zero() || last_trim.is_none_or(|at| at.elapsed() >= TRIM_EVERY) {
        *last_trim = Some(tokio::time::Instant::now());
        match queue_trim::trim_finished(&ctx.queue, retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "finished jobs trimmed from the queue"),
            Err(e) => tracing::warn!(error = %e, "cannot trim finished jobs from the queue"),
        }
    }
    match queue_trim::size(&ctx.queue).await {
        Ok(size) => {
            for (state, n) in size.by_state() {
                metrics()
                    .queue_jobs
                    .get_or_create(&QueueStateLabels { state })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot count the queue's jobs"),
    }
}

async fn reconcile_sweeps(ctx: &WorkerCtx, lost_after: chrono::Duration) {
    match sweeps::unfinished(&ctx.db).await {
        Ok(open) => {
            for s in open {
                if let Err(e) = reconcile_sweep(ctx, s.id, lost_after).await {
                    tracing::warn!(sweep_id = i64::from(s.id), error = %e, "sweep reconciliation failed");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list unfinished sweeps"),
    }
}

/// Queues a *refresh token* job for every member whose pair expires within [`REFRESH_WITHIN`].
pub async fn push_refreshes(ctx: &WorkerCtx) -> domain::Result<usize> {
    let due = tokens::expiring(&ctx.db, REFRESH_WITHIN, REFRESH_BATCH).await?;
    for &user_id in &due {
        let job = Job::RefreshToken {
            user_id,
            attempt: 0,
        };
        ctx.queue.push(job).await?;
    }
    if !due.is_empty() {
        tracing::info!(queued = due.len(), "token refreshes queued");
    }
    Ok(due.len())
}
