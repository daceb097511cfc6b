//! Periodic clean-up of expired sign-in rows and idle rate-limit buckets.

use std::time::Duration;

use crate::state::AppState;

pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        let now = chrono::Utc::now();
        let states = domain::sign_in::purge_expired(&state.db, now).await;
        let sessions = domain::sessions::purge_ended(&state.db, now).await;
        match (states, sessions) {
            (Ok(a), Ok(b)) => tracing::debug!(expired_rows = a + b, "housekeeping done"),
            (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        state.rate_limiter.shrink();
        state.auth_cache.purge_stale();
    }
}
