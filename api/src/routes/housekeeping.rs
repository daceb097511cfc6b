//! Periodic clean-up: expired sign-in rows, records past their retention, idle rate-limit
//! buckets.

use std::time::Duration;

use crate::state::AppState;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        match domain::sessions::purge_expired_sign_ins(&state.db, now).await {
            Ok(removed) => tracing::debug!(removed, "housekeeping done"),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        match domain::retention::purge(&state.db, now).await {
            Ok(purged) => tracing::debug!(?purged, "old records purged"),
            Err(e) => tracing::warn!(error = %e, "purging old records failed"),
        }
        state.rate_limiter.shrink();
        state.auth_cache.purge_stale();
    }
}
