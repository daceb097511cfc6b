//! Sweeps from the worker's side: the reconciler that pushes whatever unfinished sweeps still
//! owe, and `worker sweep --now`.

use std::time::Duration;

use domain::SweepId;
use domain::work::ledger::{items, push};
use domain::work::sweeps::{self, Progress};
use entity::states::SweepTrigger;
use entity::sweep;

use crate::WorkerCtx;

/// Members pushed per batch when a sweep fans out.
const BATCH: u64 = 500;
/// How often `sweep --now` re-pushes what its sweep still owes.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

/// Pushes what `sweep` still owes: pending members, and queued ones whose job seems lost.
pub async fn reconcile_sweep(
    ctx: &WorkerCtx,
    sweep_id: SweepId,
    lost_after: chrono::Duration,
) -> domain::Result<()> {
    let pushed = push::push_pending_items(&ctx.db, &ctx.queue, sweep_id, BATCH).await?;
    let repushed = push::repush_stale_items(&ctx.db, &ctx.queue, sweep_id, lost_after).await?;
    if pushed + repushed > 0 {
        tracing::info!(
            sweep_id = i64::from(sweep_id),
            pushed,
            repushed,
            "sweep reconciled"
        );
    }
    items::close_sweep_if_complete(&ctx.db, sweep_id).await?;
    Ok(())
}

/// Starts the sweep of every tick of `VERIFY_SCHEDULE` as it comes (and, at start, of the
/// latest tick if it never ran). Every replica may run this: a tick's sweep is created once.
pub async fn run_scheduler(ctx: WorkerCtx) {
    let schedule = ctx.settings.verify_schedule.clone();
    let mut now = chrono::Utc::now();
    let mut due = schedule.latest_at_or_before(now);
    loop {
        if let Some(tick) = due {
            let id = domain::work::schedule::tick_id(tick);
            match sweeps::start(&ctx.db, &id, SweepTrigger::Schedule, now).await {
                Ok(sweep) if sweep.finished_at.is_none() => {
                    if let Err(e) =
                        reconcile_sweep(&ctx, sweep.id, ctx.settings.job_lost_after).await
                    {
                        tracing::warn!(tick = %id, error = %e, "cannot fan out the scheduled sweep");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(tick = %id, error = %e, "cannot start the scheduled sweep")
                }
            }
        }
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!("VERIFY_SCHEDULE has no future tick; scheduled sweeps stop");
            return;
        };
        let wait = (next - chrono::Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
        now = chrono::Utc::now();
        due = Some(next);
    }
}

/// Starts a sweep now, runs its checks in this process (other workers may help), shows
/// progress, and returns the final counts once every member is accounted for.
pub async fn sweep_now(
    ctx: &WorkerCtx,
    trigger: SweepTrigger,
) -> anyhow::Result<(sweep::Model, Progress)> {
    let now = chrono::Utc::now();
    let tick = format!("manual-{}", now.to_rfc3339());
    let sweep = sweeps::start(&ctx.db, &tick, trigger, now).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let local = tokio::spawn(crate::startup::run(
        ctx.clone(),
        ctx.queue.clone(),
        async move {
            let _ = stopped.await;
            Ok(())
        },
    ));
    let bar = indicatif::ProgressBar::new(u64::try_from(sweep.total).unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} members {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut last_reconcile = tokio::time::Instant::now() - RECONCILE_EVERY;
    let mut loss = crate::reconciler::LossDetector::default();
    let mut last_look = tokio::time::Instant::now() - crate::reconciler::QUEUE_LOOK_EVERY;
    let progress = loop {
        // A queue that lost everything (Redis restarted, `FLUSHALL`) is noticed within seconds
        // and the sweep's queued checks go again at once, not after `JOB_LOST_AFTER_SECS`.
        if last_look.elapsed() >= crate::reconciler::QUEUE_LOOK_EVERY {
            last_look = tokio::time::Instant::now();
            if loss.queue_was_lost(ctx).await {
                reconcile_sweep(ctx, sweep.id, chrono::Duration::zero()).await?;
            }
        }
        if last_reconcile.elapsed() >= RECONCILE_EVERY {
            reconcile_sweep(ctx, sweep.id, ctx.settings.job_lost_after).await?;
            last_reconcile = tokio::time::Instant::now();
        }
        let p = sweeps::progress(&ctx.db, sweep.id).await?;
        bar.set_position(p.done);
        bar.set_message(format!(
            "({} changed, {} failed, {} skipped)",
            p.changed, p.failed, p.skipped
        ));
        if p.is_complete() {
            items::close_sweep_if_complete(&ctx.db, sweep.id).await?;
            break p;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    bar.finish();
    let _ = stop.send(());
    local.await??;
    Ok((sweep, progress))
}
