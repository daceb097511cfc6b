//! Wires the job handlers to the queue and runs them until the shutdown signal.

use std::{future::Future, time::Duration};

use apalis::prelude::{BackendExt, Monitor, WorkerBuilder, WorkerBuilderExt};
use domain::work::jobs::JobQueue;

use crate::{WorkerCtx, poll::EveryTick};

/// Everything a worker process does: the job workers, the sweep scheduler and the reconciler,
/// until `shutdown` resolves.
pub async fn run_all(
    ctx: WorkerCtx,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    // Dropped when this future ends or is cancelled, taking the loops with it.
    let mut background = vec![
        tokio::spawn(crate::sweeper::run_scheduler(ctx.clone())),
        tokio::spawn(crate::reconciler::run(ctx.clone())),
    ];
    let patreon = &ctx.settings.patreon;
    if patreon.webhook_secret.is_some() && patreon.creator_access_token.is_some() {
        background.push(tokio::spawn(crate::webhook_watch::run(ctx.patreon.clone())));
    }
    let _background = AbortOnDrop(background);
    let queue = ctx.queue.clone();
    run(ctx, queue, shutdown).await
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// How long a stopping worker lets running jobs finish before it exits anyway. A job cut short
/// holds its member's lease until the lease expires, so a re-run never overlaps it.
const DRAIN_DEADLINE: Duration = Duration::from_secs(8);
/// Waits between restarts of job workers that stopped on a queue error (Redis or the database
/// went away): doubling from the first to the last.
const RESTART_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Runs the job workers on `queue` until `shutdown` resolves, then drains for at most
/// [`DRAIN_DEADLINE`]. A queue failure stops apalis's workers; they are started again with
/// backoff, so a Redis restart costs a pause, not the process.
pub async fn run(
    ctx: WorkerCtx,
    queue: JobQueue,
    shutdown: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = shutdown.await;
        let _ = stop.send(true);
    });
    let mut backoff = RESTART_BACKOFF.0;
    loop {
        let started = tokio::time::Instant::now();
        let mut signal = stopped.clone();
        let until_stopped = async move {
            let _ = signal.wait_for(|s| *s).await;
            Ok(())
        };
        let ended = run_workers(&ctx, &queue, until_stopped).await;
        if *stopped.borrow() {
            return ended;
        }
        // Not asked to stop: apalis gave up on a worker (with a drain deadline set, its monitor
        // reports that as a clean end), so this is a failure to recover from.
        let error = ended
            .err()
            .map_or_else(|| "a job worker ended".to_owned(), |e| format!("{e:#}"));
        if started.elapsed() > RESTART_BACKOFF.1 * 2 {
            backoff = RESTART_BACKOFF.0; // it ran fine for a while: start over
        }
        tracing::warn!(error = %error, retry_in_ms = backoff.as_millis() as u64, "job workers stopped; restarting");
        let mut signal = stopped.clone();
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = signal.wait_for(|s| *s) => return Ok(()),
        }
        backoff = (backoff * 2).min(RESTART_BACKOFF.1);
    }
}

/// One run of apalis's workers, until `signal` or a queue error.
async fn run_workers(
    ctx: &WorkerCtx,
    queue: &JobQueue,
    signal: impl Future<Output = std::io::Result<()>> + Send + 'static,
) -> anyhow::Result<()> {
    // Unique per run, even for several runs in one process (apalis refuses a name that was
    // active moments ago, docs/job-queue.md §3.6).
    let name = format!(
        "verify-{}-{}",
        std::process::id(),
        &domain::infra::secrets::random_id()[..8]
    );
    let ctx = ctx.clone();
    let concurrency = ctx.settings.worker_concurrency;
    // The same worker on either backend; polling on every tick keeps pickup under a second.
    macro_rules! monitor {
        ($backend:expr) => {{
            let backend = $backend;
            Monitor::new()
                .register(move |restarts| {
                    WorkerBuilder::new(format!("{name}-{restarts}"))
                        .backend(
                            backend
                                .clone()
                                .poll_with_strategy(EveryTick::new(ctx.settings.queue_poll)),
                        )
                        .data(ctx.clone())
                        .catch_panic()
                        .concurrency(concurrency)
                        .build(crate::jobs::handle)
                })
                .shutdown_timeout(DRAIN_DEADLINE)
                .run_with_signal(signal)
                .await
        }};
    }
    match queue.clone() {
        JobQueue::Redis(storage) => monitor!(storage)?,
        JobQueue::Sqlite(storage) => monitor!(storage)?,
    }
    Ok(())
}
