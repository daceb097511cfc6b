//! The *verify membership* job.

use apalis::prelude::{AbortError, BoxDynError, Data};
use domain::{job_requests, jobs::Job, verification::Verification};

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
    } = job;
    if let Some(id) = &request_id {
        job_requests::mark_running(&ctx.db, id).await?;
    }
    let outcome = ctx.verifier().verify(&ctx.db, user_id, trigger).await;
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
        // The failure is recorded; retries with backoff arrive with the worker's retry policy.
        Err(e) => Err(AbortError::new(e).into()),
    }
}
