//! The *verify membership* job.

use apalis::prelude::{AbortError, BoxDynError, Data};
use domain::{
    job_requests,
    jobs::{Job, MAX_ATTEMPTS, retry_delay},
    verification::Verification,
};

use crate::WorkerCtx;

/// How the outcome is reported in `job_requests.result`.
fn result_label(v: Verification) -> &'static str {
    match v {
        Verification::Verified { granted: true, .. } => "paying_member",
        Verification::Verified { granted: false, .. } => "not_a_paying_member",
        Verification::NeedsRelogin => "needs_relogin",
    }
}

pub async fn handle(job: Job, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    let Job::VerifyMembership {
        user_id,
        trigger,
        request_id,
    } = job.clone();
    let attempt = match &request_id {
        Some(id) => match job_requests::start_attempt(&ctx.db, id).await? {
            Some(attempt) => attempt,
            None => return Ok(()), // the member was erased meanwhile
        },
        None => 1,
    };
    let outcome = ctx.verifier().verify(&ctx.db, user_id, trigger).await;
    if let (Err(domain::Error::Patreon(e)), Some(id)) = (&outcome, &request_id)
        && e.is_transient()
        && attempt < MAX_ATTEMPTS
    {
        // Retried by us, not by the queue: our attempt count is the real limit (see job-queue.md 3.1).
        let delay = retry_delay(e, attempt);
        job_requests::mark_retrying(&ctx.db, id, e.kind()).await?;
        ctx.queue.push_after(job, delay).await?;
        tracing::info!(
            user_id,
            attempt,
            delay_ms = delay.as_millis() as u64,
            "verification retry queued"
        );
        return Ok(());
    }
    let label = match &outcome {
        Ok(v) => Ok(result_label(*v)),
        Err(domain::Error::Patreon(e)) => Err(e.kind()),
        Err(domain::Error::UnknownUser) => Err("unknown_user"),
        Err(_) => Err("internal"),
    };
    if let Some(id) = &request_id {
        job_requests::mark_finished(&ctx.db, id, label).await?;
    }
    match outcome {
        Ok(_) => Ok(()),
        // Recorded above; the queue must not retry on its own.
        Err(e) => Err(AbortError::new(e).into()),
    }
}
