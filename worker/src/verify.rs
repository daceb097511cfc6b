//! The *verify membership* job, for a member's recheck, an admin, or a sweep.

use apalis::prelude::{AbortError, BoxDynError, Data};
use domain::{
    job_requests,
    jobs::{Job, MAX_ATTEMPTS, retry_delay},
    membership_checks::CheckOutcome,
    sweeps,
    verification::Verification,
};
use sea_orm::DatabaseConnection;

use crate::WorkerCtx;

/// Where a job reports its progress: the request someone waits on, or its sweep's item.
enum Tracker {
    Request(String),
    SweepItem { sweep_id: i64, user_id: i64 },
    Untracked,
}

impl Tracker {
    /// Counts the attempt; `None` when there is nothing left to do (done already, or gone).
    async fn start(&self, db: &DatabaseConnection) -> domain::Result<Option<i32>> {
        match self {
            Self::Request(id) => job_requests::start_attempt(db, id).await,
            Self::SweepItem { sweep_id, user_id } => {
                sweeps::start_attempt(db, *sweep_id, *user_id).await
            }
            Self::Untracked => Ok(Some(1)),
        }
    }

    async fn retrying(&self, db: &DatabaseConnection, error: &str) -> domain::Result<()> {
        match self {
            Self::Request(id) => job_requests::mark_retrying(db, id, error).await,
            Self::SweepItem { sweep_id, user_id } => {
                sweeps::retrying(db, *sweep_id, *user_id, error).await
            }
            Self::Untracked => Ok(()),
        }
    }

    async fn finish(
        &self,
        db: &DatabaseConnection,
        outcome: &Result<Verification, domain::Error>,
    ) -> domain::Result<()> {
        let error = match outcome {
            Ok(_) => None,
            Err(domain::Error::Patreon(e)) => Some(e.kind()),
            Err(domain::Error::UnknownUser) => Some("unknown_user"),
            Err(_) => Some("internal"),
        };
        match self {
            Self::Request(id) => {
                let result = match outcome {
                    Ok(Verification::Verified { granted: true, .. }) => Ok("paying_member"),
                    Ok(Verification::Verified { granted: false, .. }) => Ok("not_a_paying_member"),
                    Ok(Verification::NeedsRelogin) => Ok("needs_relogin"),
                    Err(_) => Err(error.unwrap_or("internal")),
                };
                job_requests::mark_finished(db, id, result).await
            }
            Self::SweepItem { sweep_id, user_id } => {
                let check = match outcome {
                    Ok(Verification::Verified { changed: true, .. }) => CheckOutcome::Changed,
                    Ok(Verification::Verified { changed: false, .. }) => CheckOutcome::Verified,
                    Ok(Verification::NeedsRelogin) => CheckOutcome::Skipped,
                    Err(_) => CheckOutcome::Failed,
                };
                sweeps::finish_item(db, *sweep_id, *user_id, check.as_str(), error).await
            }
            Self::Untracked => Ok(()),
        }
    }
}

pub async fn handle(job: Job, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    let Job::VerifyMembership {
        user_id,
        trigger,
        request_id,
        sweep_id,
    } = job.clone();
    let tracker = match (request_id, sweep_id) {
        (Some(id), _) => Tracker::Request(id),
        (None, Some(sweep_id)) => Tracker::SweepItem { sweep_id, user_id },
        (None, None) => Tracker::Untracked,
    };
    let Some(attempt) = tracker.start(&ctx.db).await? else {
        return Ok(()); // a duplicate delivery, or the member was erased meanwhile
    };
    let verifier = match tracker {
        Tracker::SweepItem { .. } => ctx.sweep_verifier(),
        _ => ctx.verifier(),
    };
    let outcome = verifier.verify(&ctx.db, user_id, trigger).await;
    if let Err(domain::Error::Patreon(e)) = &outcome
        && e.is_transient()
        && attempt < MAX_ATTEMPTS
    {
        // Retried by us, not by the queue: our attempt count is the real limit (job-queue.md 3.1).
        let delay = retry_delay(e, attempt);
        tracker.retrying(&ctx.db, e.kind()).await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id,
            attempt,
            delay_ms = delay.as_millis() as u64,
            "verification retry queued"
        );
        return Ok(());
    }
    tracker.finish(&ctx.db, &outcome).await?;
    match outcome {
        Ok(_) => Ok(()),
        // Recorded above; the queue must not retry on its own.
        Err(e) => Err(AbortError::new(e).into()),
    }
}
