//! Wires the job handlers to the queue and runs them until the shutdown signal.

use std::{future::Future, time::Duration};

use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use domain::jobs::JobQueue;

use crate::WorkerCtx;

/// How many jobs one worker process runs at once.
const CONCURRENCY: usize = 4;

/// Everything a worker process does: the job workers, the sweep scheduler and the reconciler,
/// until `shutdown` resolves.
pub async fn run_all(
    ctx: WorkerCtx,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    // Dropped when this future ends or is cancelled, taking the loops with it.
    let _background = AbortOnDrop(vec![
        tokio::spawn(crate::sweeper::run_scheduler(ctx.clone())),
        tokio::spawn(crate::reconciler::run(ctx.clone())),
    ]);
    let queue = ctx.queue.clone();
    run(ctx, queue, shutdown).await
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Runs the job workers on `queue` until `shutdown` resolves, then drains within 30 s.
pub async fn run(
    ctx: WorkerCtx,
    queue: JobQueue,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    // Unique per run, even for several runs in one process (apalis refuses a name that was
    // active moments ago, job-queue.md 3.6).
    let name = format!(
        "verify-{}-{}",
        std::process::id(),
        &domain::secrets::random_id()[..8]
    );
    // The same worker on either backend; the poll interval keeps pickup under a second.
    macro_rules! monitor {
        ($backend:expr) => {{
            let backend = $backend;
            Monitor::new()
                .register(move |restarts| {
                    WorkerBuilder::new(format!("{name}-{restarts}"))
                        .backend(
                            backend
                                .clone()
                                .poll_with_interval(Duration::from_millis(200)),
                        )
                        .data(ctx.clone())
                        .catch_panic()
                        .concurrency(CONCURRENCY)
                        .build(crate::jobs::handle)
                })
                .shutdown_timeout(Duration::from_secs(30))
                .run_with_signal(shutdown)
                .await
        }};
    }
    match queue {
        JobQueue::Redis(storage) => monitor!(storage)?,
        JobQueue::Sqlite(storage) => monitor!(storage)?,
    }
    Ok(())
}
