//! The ledger of owed work: the one place that writes the state of a piece of work.
//!
//! # The design
//!
//! **The database is the record of owed work; the queue only delivers.** Whatever the service
//! has accepted is a row before anything is pushed, and a job carries ids only: it is a pointer
//! to one of these rows. Redis may lose everything and nothing is forgotten: the reconciler
//! re-derives what is owed from the rows and pushes it again ([`push`]), and a job delivered
//! twice finds its row finished (or the member's lease taken) and does nothing
//! (docs/job-queue.md §5).
//!
//! Three records, each with its states (`entity::states`); every write of a state column is a
//! transition in this module, and a transition from a state it does not start from changes
//! nothing and says so ([`Transition::Unmoved`]).
//!
//! **A recheck someone waits for** (`job_requests`, [`requests`]):
//!
//! | From | Transition | To |
//! |---|---|---|
//! | (none) | `request`: recorded, at most one open per member and kind | `queued` |
//! | `queued`, `running` | `start`: an attempt begins and is counted | `running` |
//! | `running` | `retry_later`: a transient failure, pushed again with backoff | `queued` |
//! | `running` | `defer`: Patreon's 429; the attempt is given back | `queued` |
//! | `queued`, `running` | `succeed` | `succeeded` |
//! | `queued`, `running` | `give_up`: a permanent error, the last attempt, or the queue refused the push | `failed` |
//! | `failed` | `retry`: an admin retries a dead one, with a fresh attempt count | `queued` |
//!
//! **A member's check within a sweep** (`sweep_items`, [`items`]):
//!
//! | From | Transition | To |
//! |---|---|---|
//! | (none) | `owe_everyone`: the sweep starts, one item per member | `pending` |
//! | `pending` | `claim_pending`: marked before it is pushed | `queued` |
//! | `queued` | `unclaim`: the queue refused the push | `pending` |
//! | `queued` | `reclaim`: silent too long, pushed again | `queued` |
//! | `pending`, `queued` | `start`, `retry_later`, `defer` (attempts counted or given back) | unchanged |
//! | `pending`, `queued` | `finish` with an outcome (`verified`, `changed`, `skipped`, `failed`) | `done` |
//! | `done` (`failed`) | `retry`: an admin retries a dead one; its sweep is open again | `pending` |
//!
//! The last item to finish closes its sweep (`sweeps.finished_at`).
//!
//! **A webhook delivery** (`webhook_events`, [`deliveries`]):
//!
//! | From | Transition | To |
//! |---|---|---|
//! | (none) | `record`: for our campaign, or another | `pending` or `ignored` |
//! | `pending` | `settle`: applied, older than the stored state, unparsable, or no such member yet | `applied`, `stale`, `failed` or `waiting` |
//! | `waiting` | `release_waiting`: the member signed in | `pending` |
//!
//! Pushing lives in [`push`]: [`push::request_recheck`] is the one entry point that records a
//! recheck and pushes it (the api, the CLI and the dashboard call it), and the reconciler and
//! the dead-job retry push through the same functions. [`WorkRef`] is the row a running
//! *verify membership* job reports into. [`owed`] counts what is owed, for the metrics.

pub mod deliveries;
pub mod items;
pub mod owed;
pub mod push;
pub mod requests;
mod work_ref;

pub use push::request_recheck;
pub use requests::Requested;
pub use work_ref::WorkRef;

/// What a transition did. A record in a state the transition does not start from (finished
/// already, gone, or moved by someone else) is left alone: [`Transition::Unmoved`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Moved,
    Unmoved,
}

impl Transition {
    /// From the rows an update changed: one moved it, none left it alone.
    fn from_rows(rows_affected: u64) -> Self {
        if rows_affected > 0 {
            Self::Moved
        } else {
            Self::Unmoved
        }
    }

    pub fn moved(self) -> bool {
        self == Self::Moved
    }
}

#[cfg(test)]
mod tests;
