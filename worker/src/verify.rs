//! The *verify membership* job, for a member's recheck, an admin, or a sweep: the member's lease,
//! then the check, with the row it reports into moved through the ledger's transitions
//! (`domain::work::ledger`).

use std::time::Duration;

use apalis::prelude::{AbortError, BoxDynError};
use domain::{
    members::membership_checks::CheckTrigger,
    members::verification::Verification,
    patreon::{PatreonError, budget::DEFAULT_PAUSE},
    work::jobs::{Job, MAX_ATTEMPTS, backoff, retry_delay},
    work::leases,
    work::ledger::WorkRef,
};

/// One member's check holds their lease this long, renewed while it runs; a check whose worker
/// died lets others in after at most this long.
pub(crate) const CHECK_LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// When a job finds another check of the same member under way, it comes back this much later.
pub(crate) const BUSY_RETRY: Duration = Duration::from_secs(5);

/// The lease every change to one member's membership runs under (checks, webhook deliveries).
pub(crate) fn lease_key(user_id: i64) -> String {
    leases::member_key(user_id)
}

use crate::{WorkerCtx, jobs::Ran};

/// Runs one *verify membership* job: at most one check per member at a time, anywhere.
pub async fn run(
    ctx: &WorkerCtx,
    job: Job,
    user_id: i64,
    trigger: CheckTrigger,
    tracker: WorkRef,
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
    user_id: i64,
    trigger: CheckTrigger,
    tracker: &WorkRef,
) -> Result<Ran, BoxDynError> {
    let Some(attempt) = tracker.start(&ctx.db).await? else {
        return Ok(Ran::Done); // a duplicate delivery, or the member was erased meanwhile
    };
    if attempt > MAX_ATTEMPTS {
        // Attempts are counted as they start, so runs that killed their worker count too; a job
        // that keeps crashing ends here, dead, instead of looping (docs/job-queue.md §3.4).
        let _ = tracker.give_up(&ctx.db, "crashed").await?;
        tracing::error!(user_id, attempt, "verification crashed too often; given up");
        return Err(AbortError::new(std::io::Error::other("poison job")).into());
    }
    let verifier = match tracker {
        WorkRef::SweepItem { .. } => ctx.sweep_verifier(),
        WorkRef::Request(_) | WorkRef::Untracked => ctx.verifier(),
    };
    let outcome = verifier.verify(&ctx.db, user_id, trigger).await;
    if let Err(domain::Error::Patreon(PatreonError::RateLimited { retry_after })) = &outcome {
        // A 429 is about the deployment, not this member (the client has paused every call):
        // come back after it without spending an attempt, however long the storm lasts.
        let delay = retry_after.unwrap_or(DEFAULT_PAUSE);
        let _ = tracker.defer(&ctx.db, "rate_limited").await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id,
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
        let _ = tracker.retry_later(&ctx.db, reason).await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id,
            attempt,
            reason,
            delay_ms = delay.as_millis() as u64,
            "verification retry queued"
        );
        return Ok(Ran::Retrying);
    }
    let _ = tracker.finish(&ctx.db, &outcome).await?;
    if let Err(domain::Error::UnknownUser) = outcome {
        // Erased since the job was queued: nothing to check, and nobody to recreate.
        tracing::info!(user_id, "member no longer exists; check skipped");
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
