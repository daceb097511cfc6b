//! The *verify membership* job, for a member's recheck, an admin, or a sweep.

use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError};
use domain::{JobRequestId, SweepId, UserId};
use domain::{
    members::membership_checks::{CheckOutcome, CheckTrigger},
    members::verification::Verification,
    patreon::{PatreonError, budget::DEFAULT_PAUSE},
    work::job_requests,
    work::jobs::{Job, MAX_ATTEMPTS, backoff, retry_delay},
    work::leases,
    work::sweeps,
};
use sea_orm::DatabaseConnection;

/// One member's check holds their lease this long, renewed while it runs; a check whose worker
/// died lets others in after at most this long.
pub(crate) const CHECK_LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// When a job finds another check of the same member under way, it comes back this much later.
pub(crate) const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The lease every change to one member's membership runs under (checks, webhook deliveries).
pub(crate) fn lease_key(user_id: UserId) -> String {
    leases::member_key(user_id)
}

use crate::{WorkerCtx, jobs::Ran};

/// Where a job reports its progress: the request someone waits on, or its sweep's item.
pub enum Tracker {
    Request(JobRequestId),
    SweepItem { sweep_id: SweepId, user_id: UserId },
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

    /// Patreon rate limited the deployment: the attempt is given back, since nothing about the
    /// member failed, and the item waits for its deferred job.
    async fn deferred(&self, db: &DatabaseConnection, error: &str) -> domain::Result<()> {
        match self {
            Self::Request(id) => job_requests::give_back_attempt(db, id, error).await,
            Self::SweepItem { sweep_id, user_id } => {
                sweeps::give_back_attempt(db, *sweep_id, *user_id, error).await
            }
            Self::Untracked => Ok(()),
        }
    }

    /// Ends the job without a check: it crashed its worker too many times (a poison job).
    async fn give_up(&self, db: &DatabaseConnection, error: &str) -> domain::Result<()> {
        match self {
            Self::Request(id) => job_requests::mark_finished(db, id, Err(error)).await,
            Self::SweepItem { sweep_id, user_id } => {
                let failed = CheckOutcome::Failed.as_str();
                sweeps::finish_item(db, *sweep_id, *user_id, failed, Some(error)).await
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

/// Runs one *verify membership* job: at most one check per member at a time, anywhere.
pub async fn run(
    ctx: &WorkerCtx,
    job: Job,
    user_id: UserId,
    trigger: CheckTrigger,
    tracker: Tracker,
) -> Result<Ran, BoxDynError> {
    let key = lease_key(user_id);
    let Some(lease) = leases::try_acquire(&ctx.db, &key, CHECK_LEASE).await? else {
        // Another delivery of this member's check is running (a duplicate, or a different
        // trigger): come back after it instead of calling Patreon twice at once.
        ctx.queue.push_after(job, BUSY_RETRY).await?;
        return Ok(Ran::Deferred);
    };
    let work = run_leased(ctx, job, user_id, trigger, &tracker);
    leases::while_held(&ctx.db, lease, CHECK_LEASE, work).await
}

async fn run_leased(
    ctx: &WorkerCtx,
    job: Job,
    user_id: UserId,
    trigger: CheckTrigger,
    tracker: &Tracker,
) -> Result<Ran, BoxDynError> {
    let Some(attempt) = tracker.start(&ctx.db).await? else {
        return Ok(Ran::Done); // a duplicate delivery, or the member was erased meanwhile
    };
    if attempt > MAX_ATTEMPTS {
        // Attempts are counted as they start, so runs that killed their worker count too; a job
        // that keeps crashing ends here, dead, instead of looping (docs/job-queue.md §3.4).
        tracker.give_up(&ctx.db, "crashed").await?;
        tracing::error!(
            user_id = i64::from(user_id),
            attempt,
            "verification crashed too often; given up"
        );
        return Err(AbortError::new(std::io::Error::other("poison job")).into());
    }
    let verifier = match tracker {
        Tracker::SweepItem { .. } => ctx.sweep_verifier(),
        _ => ctx.verifier(),
    };
    let outcome = verifier.verify(&ctx.db, user_id, trigger).await;
    if let Err(domain::Error::Patreon(PatreonError::RateLimited { retry_after })) = &outcome {
        // A 429 is about the deployment, not this member (the client has paused every call):
        // come back after it without spending an attempt, however long the storm lasts.
        let delay = retry_after.unwrap_or(DEFAULT_PAUSE);
        tracker.deferred(&ctx.db, "rate_limited").await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id = i64::from(user_id),
            delay_ms = delay.as_millis() as u64,
            "Patreon rate limited the check; deferred"
        );
        return Ok(Ran::Deferred);
    }
    if let Some((delay, reason)) = transient(&outcome, attempt)
        && attempt < MAX_ATTEMPTS
    {
        // Retried by us, not by the queue: our attempt count is the real limit
        // (docs/job-queue.md §3.1).
        tracker.retrying(&ctx.db, reason).await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id = i64::from(user_id),
            attempt,
            reason,
            delay_ms = delay.as_millis() as u64,
            "verification retry queued"
        );
        return Ok(Ran::Retrying);
    }
    tracker.finish(&ctx.db, &outcome).await?;
    if let Err(domain::Error::UnknownUser) = outcome {
        // Erased since the job was queued: nothing to check, and nobody to recreate.
        tracing::info!(
            user_id = i64::from(user_id),
            "member no longer exists; check skipped"
        );
        return Ok(Ran::Done);
    }
    match outcome {
        Ok(_) => Ok(Ran::Done),
        // Recorded above; the queue must not retry on its own.
        Err(e) => Err(AbortError::new(e).into()),
    }
}

/// When a failed check is worth another try, and why it failed: Patreon's transient failures,
/// and the database going away mid-check (its writes are one transaction: all or nothing), which
/// says nothing about the member.
fn transient(
    outcome: &Result<Verification, domain::Error>,
    attempt: i32,
) -> Option<(Duration, &'static str)> {
    match outcome {
        Err(domain::Error::Patreon(e)) if e.is_transient() => {
            Some((retry_delay(e, attempt), e.kind()))
        }
        Err(domain::Error::Database(_)) => Some((backoff(attempt), "database_unavailable")),
        _ => None,
    }
}
