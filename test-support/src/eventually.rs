//! Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping.

use std::{fmt::Debug, future::Future, time::Duration};

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

/// Reads a value until `done` holds for it, and returns that value. Panics with `what`, the
/// deadline and the last value read when `within` passes first.
pub async fn eventually_matching<T, R, Fut, D>(
    what: &str,
    within: Duration,
    mut read: R,
    done: D,
) -> T
where
    T: Debug,
    R: FnMut() -> Fut,
    Fut: Future<Output = T>,
    D: Fn(&T) -> bool,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let value = read().await;
        if done(&value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}; last read: {value:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
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
    #[should_panic(expected = "timed out after 100ms waiting for seven; last read: 3")]
    async fn names_the_last_value_read_at_the_deadline() {
        eventually_matching(
            "seven",
            Duration::from_millis(100),
            || async { 3 },
            |n| *n == 7,
        )
        .await;
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 100ms waiting for nothing")]
    async fn panics_naming_what_it_waited_for_at_the_deadline() {
        eventually_true("nothing", Duration::from_millis(100), || async { false }).await;
    }
}
