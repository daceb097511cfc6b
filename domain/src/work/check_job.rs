//! Running one *verify membership* job (a member's recheck, an admin's, or a sweep's): under
//! the member's lease, the attempt counted as it starts, the check, and the row the job reports
//! into moved through the [ledger](crate::work::ledger)'s transitions. The worker only
//! dispatches to [`run`] and tells the queue what came of it.

use std::time::Duration;

use entity::states::CheckTrigger;
use sea_orm::DatabaseConnection;

use crate::members::verification::{Verification, Verifier};
use crate::patreon::{PatreonError, budget::DEFAULT_PAUSE};
use crate::work::jobs::{Job, JobQueue, MAX_ATTEMPTS, backoff, retry_delay};
use crate::work::leases;
use crate::work::ledger::WorkRef;
use crate::{Error, Result, UserId};

/// One member's check holds their lease this long, renewed while it runs; a check whose worker
/// died lets others in after at most this long.
pub const CHECK_LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// When a job finds another check of the same member under way, it comes back this much later.
pub const BUSY_RETRY: Duration = Duration::from_secs(5);

/// What running the job came to.
#[derive(Debug)]
pub enum CheckRun {
    /// Checked, or nothing left to do (a duplicate delivery, a member erased meanwhile).
    Done,
    /// A transient failure; its retry is queued.
    Retrying,
    /// Handed back for later: another check of the member is under way, or Patreon rate
    /// limited the deployment.
    Deferred,
    /// Ended for good and recorded as failed: the queue must not retry it.
    Failed(Error),
    /// Its attempts kept killing their worker: given up as `crashed` (a poison job).
    Poisoned,
}

/// Runs `job`, a check of `user_id` for `trigger`, with `verifier`: at most one check per member
/// at a time, anywhere.
pub async fn run(
    db: &DatabaseConnection,
    queue: &JobQueue,
    verifier: &Verifier<'_>,
    job: Job,
    user_id: UserId,
    trigger: CheckTrigger,
) -> Result<CheckRun> {
    let key = leases::member_key(user_id);
    let Some(lease) = leases::try_acquire(db, &key, CHECK_LEASE).await? else {
        // Another delivery of this member's check is running (a duplicate, or a different
        // trigger): come back after it instead of calling Patreon twice at once.
        push_after(queue, job, BUSY_RETRY).await?;
        return Ok(CheckRun::Deferred);
    };
    let check = Check {
        db,
        queue,
        verifier,
        user_id,
        trigger,
    };
    leases::while_held(db, lease, CHECK_LEASE, check.run_leased(job)).await
}

struct Check<'a> {
    db: &'a DatabaseConnection,
    queue: &'a JobQueue,
    verifier: &'a Verifier<'a>,
    user_id: UserId,
    trigger: CheckTrigger,
}

impl Check<'_> {
    async fn run_leased(&self, job: Job) -> Result<CheckRun> {
        let (db, user_id) = (self.db, self.user_id);
        let log_id = i64::from(user_id); // logs carry ids as plain numbers
        let work = WorkRef::of(&job);
        let Some(attempt) = work.start(db).await? else {
            return Ok(CheckRun::Done); // a duplicate delivery, or the member was erased meanwhile
        };
        if attempt > MAX_ATTEMPTS {
            // Attempts are counted as they start, so runs that killed their worker count too; a
            // job that keeps crashing ends here, dead, instead of looping (docs/job-queue.md §3.4).
            let _ = work.give_up(db, "crashed").await?;
            tracing::error!(
                user_id = log_id,
                attempt,
                "verification crashed too often; given up"
            );
            return Ok(CheckRun::Poisoned);
        }
        let outcome = self.verifier.verify(db, user_id, self.trigger).await;
        if let Err(Error::Patreon(PatreonError::RateLimited { retry_after })) = &outcome {
            // A 429 is about the deployment, not this member (the client has paused every
            // call): come back after it without spending an attempt, however long it lasts.
            let delay = retry_after.unwrap_or(DEFAULT_PAUSE);
            let _ = work.defer(db, "rate_limited").await?;
            push_after(self.queue, job, delay).await?;
            let delay_ms = delay.as_millis() as u64;
            tracing::info!(
                user_id = log_id,
                delay_ms,
                "Patreon rate limited the check; deferred"
            );
            return Ok(CheckRun::Deferred);
        }
        if let Some((delay, reason)) = transient(&outcome, attempt)
            && attempt < MAX_ATTEMPTS
        {
            // Retried by us, not by the queue: our attempt count is the real limit
            // (docs/job-queue.md §3.1).
            let _ = work.retry_later(db, reason).await?;
            push_after(self.queue, job, delay).await?;
            let delay_ms = delay.as_millis() as u64;
            tracing::info!(
                user_id = log_id,
                attempt,
                reason,
                delay_ms,
                "verification retry queued"
            );
            return Ok(CheckRun::Retrying);
        }
        let _ = work.finish(db, &outcome).await?;
        Ok(match outcome {
            Ok(_) => CheckRun::Done,
            Err(Error::UnknownUser) => {
                // Erased since the job was queued: nothing to check, and nobody to recreate.
                tracing::info!(user_id = log_id, "member no longer exists; check skipped");
                CheckRun::Done
            }
            Err(e) => CheckRun::Failed(e),
        })
    }
}

async fn push_after(queue: &JobQueue, job: Job, delay: Duration) -> Result<()> {
    queue.push_after(job, delay).await.map_err(Error::from)
}

/// When a failed check is worth another try, and why it failed: Patreon's transient failures,
/// and the database going away mid-check (its writes are one transaction: all or nothing), which
/// says nothing about the member.
fn transient(
    outcome: &std::result::Result<Verification, Error>,
    attempt: i32,
) -> Option<(Duration, &'static str)> {
    match outcome {
        Err(Error::Patreon(e)) if e.is_transient() => Some((retry_delay(e, attempt), e.kind())),
        Err(Error::Database(_)) => Some((backoff(attempt), "database_unavailable")),
        _ => None,
    }
}
