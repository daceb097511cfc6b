//! Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping.

use std::{future::Future, time::Duration};

/// How often [`eventually`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Calls `check` until it answers `Some`, and returns that value. Panics with `what` and the
/// deadline when `within` passes first, so a test that waits never waits forever.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`eventually`] for a condition that has no value to return.
pub async fn eventually_true<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually(what, within, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_the_first_value_the_condition_yields() {
        let calls = AtomicU32::new(0);
        let seen = eventually("the third call", Duration::from_secs(5), || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            (n == 3).then_some(n)
        })
        .await;
        assert_eq!(seen, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 100ms waiting for nothing")]
    async fn panics_naming_what_it_waited_for_at_the_deadline() {
        eventually_true("nothing", Duration::from_millis(100), || async { false }).await;
    }
}
