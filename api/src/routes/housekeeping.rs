//! Periodic clean-up: expired sign-in rows, records past their retention, idle rate-limit
//! buckets.

use std::time::Duration;

use crate::state::AppState;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        match domain::auth::purge_expired_sign_ins(&state.db, now).await {
            Ok(removed) => tracing::debug!(removed, "housekeeping done"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        match domain::work::retention::purge(&state.db, now).await {
            Ok(purged) => tracing::debug!(?purged, "old records purged"),
            Err(e) => tracing::warn!(error = %e, "purging old records failed"),
        }
        state.rate_limiter.shrink();
        state.auth_cache.purge_stale();
    }
}

/// How often the api records which queue it pushes to and compares it with the workers'.
const QUEUE_WATCH_EVERY: Duration = Duration::from_secs(10);

/// Records this api's queue in the database (for the workers' `/readyz`), and says loudly, from
/// the start, when the running workers take jobs from another queue.
pub async fn watch_queue(state: AppState) {
    use domain::work::queue_identity::{MismatchLog, QueueWatch, Role, mismatch};
    let mut tick = tokio::time::interval(QUEUE_WATCH_EVERY);
    let mut watch: Option<QueueWatch> = None;
    let mut log = MismatchLog::default();
    let mut first_round = true;
    loop {
        tick.tick().await;
        // The first round only compares (reads); recording starts a round later, so a starting
        // api adds no write to the database while its first requests arrive.
        let recording = !std::mem::take(&mut first_round);
        if recording && watch.is_none() {
            watch = QueueWatch::start(&state.db, Role::Api, &state.jobs)
                .await
                .ok();
        }
        if let Some(w) = watch.as_mut()
            && let Err(e) = w.look(&state.db, &state.jobs).await
        {
            tracing::debug!(error = %e, "cannot record which queue this api uses");
        }
        match mismatch(&state.db, Role::Api, &state.jobs).await {
            Ok(problem) => log.report(problem.as_deref()),
            Err(e) => tracing::debug!(error = %e, "cannot compare queues with the workers"),
        }
    }
}
