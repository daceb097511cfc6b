//! Retrying a database write through a short outage, for writes that must not be dropped: a
//! lease let go of, a refreshed (single-use) Patreon token pair stored.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

const FIRST_WAIT: Duration = Duration::from_millis(100);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// Runs `write` until it succeeds, waiting 100 ms, doubling up to 5 s, between tries. Gives up
/// with the last error once the next try would come after `deadline` (when whatever the write
/// protects has expired anyway).
pub(crate) async fn until<T, E, Fut>(
    deadline: DateTime<Utc>,
    mut write: impl FnMut() -> Fut,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let mut wait = FIRST_WAIT;
    loop {
        let error = match write().await {
            Ok(done) => return Ok(done),
            Err(e) => e,
        };
        let next_try = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
        if next_try >= deadline {
            return Err(error);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LONGEST_WAIT);
    }
}
