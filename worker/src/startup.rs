//! Wires the job handlers to the queue and runs them until the shutdown signal.

use std::{future::Future, time::Duration};

use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use domain::jobs::JobQueue;

use crate::{WorkerCtx, verify};

/// How many jobs one worker process runs at once.
const CONCURRENCY: usize = 4;

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
                        .build(verify::handle)
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
