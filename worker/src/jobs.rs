//! The one handler the queue calls: routes each job to its use case.

use apalis::prelude::{BoxDynError, Data};
use domain::jobs::Job;

use crate::{WorkerCtx, refresh, verify};

pub async fn handle(job: Job, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    match job.clone() {
        Job::VerifyMembership {
            user_id,
            trigger,
            request_id,
            sweep_id,
        } => {
            let tracker = match (request_id, sweep_id) {
                (Some(id), _) => verify::Tracker::Request(id),
                (None, Some(sweep_id)) => verify::Tracker::SweepItem { sweep_id, user_id },
                (None, None) => verify::Tracker::Untracked,
            };
            verify::run(&ctx, job, user_id, trigger, tracker).await
        }
        Job::RefreshToken { user_id, attempt } => refresh::run(&ctx, user_id, attempt).await,
        Job::Sweep { sweep_id } => {
            // Idempotent: pushes only what the database says is still owed.
            crate::sweeper::reconcile_sweep(&ctx, sweep_id, ctx.settings.job_lost_after).await?;
            Ok(())
        }
    }
}
