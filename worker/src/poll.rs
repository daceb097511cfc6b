//! How an idle job worker notices new jobs: it asks the queue on every tick (`QUEUE_POLL_MS`).
//!
//! apalis's own `poll_with_interval` (apalis-core 1.0.0, `IntervalStrategy`) replaces its timer
//! when it fires but does not start the new one; the worker's next poll does. When the fetch
//! started on that tick completes within the same poll (it sometimes does, on Redis as on
//! SQLite, more often under load) and finds nothing, no further poll comes: the worker sleeps
//! until its queue heartbeat (10 s), and jobs pushed meanwhile wait up to that long.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use apalis::prelude::{PollSnapshot, PollStrategy};
use tokio::time::{Instant, Sleep};

/// A tick every `every`, the next one always armed before a tick is reported.
pub struct EveryTick {
    every: Duration,
    timer: Pin<Box<Sleep>>,
}

impl EveryTick {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            timer: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl PollStrategy for EveryTick {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        if self.timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer.as_mut().reset(Instant::now() + self.every);
        // Arms the next tick now: this poll may be the worker's last until something wakes it.
        let _ = self.timer.as_mut().poll(cx);
        Poll::Ready(Some(()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use tokio::sync::Notify;

    use super::*;

    struct Woken(Notify);

    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.notify_one();
        }
    }

    /// The worker polls the strategy, sees a tick, fetches nothing within that same poll and
    /// polls no more: the next tick must still wake it. apalis's `IntervalStrategy` never does.
    #[tokio::test]
    async fn after_a_tick_the_next_one_wakes_the_worker_without_another_poll() {
        let woken = Arc::new(Woken(Notify::new()));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut tick = EveryTick::new(Duration::from_millis(20));
        let snapshot = PollSnapshot::default();
        while tick.poll_drive(&mut cx, &snapshot).is_pending() {
            woken.0.notified().await;
        }
        tokio::time::timeout(Duration::from_secs(2), woken.0.notified())
            .await
            .expect("the worker is never woken for the next tick");
    }
}
