//! The *verify membership* job: picks the verifier for the work it reports into and hands the
//! job to its use case, `domain::work::check_job` (lease, attempts, the check, and the ledger's
//! transitions); then tells the queue what came of it.

use apalis::prelude::{AbortError, BoxDynError};
use domain::{
    UserId,
    members::membership_checks::CheckTrigger,
    work::check_job::{self, CheckRun},
    work::jobs::Job,
    work::ledger::WorkRef,
};

use crate::{WorkerCtx, ran::Ran};

/// Runs one *verify membership* job: at most one check per member at a time, anywhere.
pub async fn run(
    ctx: &WorkerCtx,
    job: Job,
    user_id: UserId,
    trigger: CheckTrigger,
) -> Result<Ran, BoxDynError> {
    // A sweep's checks keep tokens alive until the next sweep; others only as long as needed.
    let verifier = match WorkRef::of(&job) {
        WorkRef::SweepItem { .. } => ctx.sweep_verifier(),
        WorkRef::Request(_) | WorkRef::Untracked => ctx.verifier(),
    };
    match check_job::run(&ctx.db, &ctx.queue, &verifier, job, user_id, trigger).await? {
        CheckRun::Done => Ok(Ran::Done),
        CheckRun::Retrying => Ok(Ran::Retrying),
        CheckRun::Deferred => Ok(Ran::Deferred),
        // Recorded as failed; the queue must not retry on its own.
        CheckRun::Failed(e) => Err(AbortError::new(e).into()),
        CheckRun::Poisoned => Err(AbortError::new(std::io::Error::other("poison job")).into()),
    }
}
