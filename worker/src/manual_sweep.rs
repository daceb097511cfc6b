//! `worker sweep --now`: a sweep started by an operator, its checks run in this process while a
//! progress bar shows how far it got.

use std::time::Duration;

use domain::work::ledger::items;
use domain::work::sweeps::{self, Progress};
use entity::states::SweepTrigger;
use entity::sweep;

use crate::WorkerCtx;
use crate::reconciler::{LossDetector, QUEUE_LOOK_EVERY};
use crate::sweeper::reconcile_sweep;

/// How often `sweep --now` re-pushes what its sweep still owes.
const RECONCILE_EVERY: Duration = Duration::from_secs(60);

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
    let mut loss = LossDetector::default();
    let mut last_look = tokio::time::Instant::now() - QUEUE_LOOK_EVERY;
    let progress = loop {
        // A queue that lost everything (Redis restarted, `FLUSHALL`) is noticed within seconds
        // and the sweep's queued checks go again at once, not after `JOB_LOST_AFTER_SECS`.
        if last_look.elapsed() >= QUEUE_LOOK_EVERY {
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
