//! What a job run reports to the queue's one handler (`jobs::handle`) when it did not fail for good.

/// How a job run ended, when it did not fail for good.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran {
    Done,
    /// A transient failure; a retry is queued.
    Retrying,
    /// Handed back for later (another run of the same work is under way).
    Deferred,
}
