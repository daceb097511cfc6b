//! Sweeps from the worker's side: starting each scheduled tick's sweep, and pushing whatever an
//! unfinished sweep still owes.

use domain::SweepId;
use domain::work::ledger::{items, push};
use domain::work::sweeps;
use entity::states::SweepTrigger;

use crate::WorkerCtx;

/// Members pushed per batch when a sweep fans out.
const BATCH: u64 = 500;

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
