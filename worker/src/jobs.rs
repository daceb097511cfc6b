//! The one handler the queue calls: routes each job to its use case and counts how it went.

use apalis::prelude::{BoxDynError, Data};
use domain::{infra::metrics::metrics, work::jobs::Job};
use tracing::Instrument;

use crate::{WorkerCtx, ran::Ran, refresh, verify};

pub async fn handle(job: Job, ctx: Data<WorkerCtx>) -> Result<(), BoxDynError> {
    let kind = job.kind();
    // Every log line of the run names the job's kind and what it is about.
    let span = match &job {
        Job::VerifyMembership { user_id, .. } | Job::RefreshToken { user_id, .. } => {
            tracing::info_span!("job", kind, user_id = i64::from(*user_id))
        }
        Job::Sweep { sweep_id } => {
            tracing::info_span!("job", kind, sweep_id = i64::from(*sweep_id))
        }
        Job::ApplyWebhook { event_id } => {
            tracing::info_span!("job", kind, event_id = i64::from(*event_id))
        }
    };
    metrics().job(kind, "started");
    // The work runs to its end even when the queue's worker drops this future (the queue failed
    // under it: Redis restarted or lost its keys). Cut short between Patreon's answer to a token
    // refresh and storing the new pair, it would lose the member's single-use refresh token.
    let owned_ctx = (*ctx).clone();
    let work = async move { run(job, &owned_ctx).await }.instrument(span.clone());
    let ran = match tokio::spawn(work).await {
        Ok(ran) => ran,
        // A panic: not retried by the queue, as `catch_panic` had it.
        Err(e) => Err(apalis::prelude::AbortError::new(format!("job task ended: {e}")).into()),
    };
    if let Err(e) = &ran {
        // The queue drops it; what the database still owes is pushed again by the reconciler.
        span.in_scope(|| tracing::warn!(error = %cause_chain(e.as_ref()), "job failed"));
    }
    metrics().job(
        kind,
        match &ran {
            Ok(Ran::Done) => "succeeded",
            Ok(Ran::Retrying) => "retried",
            Ok(Ran::Deferred) => "deferred",
            Err(_) => "dead",
        },
    );
    ran.map(drop)
}

async fn run(job: Job, ctx: &WorkerCtx) -> Result<Ran, BoxDynError> {
    match job.clone() {
        Job::VerifyMembership {
            user_id, trigger, ..
        } => verify::run(ctx, job, user_id, trigger).await,
        Job::RefreshToken { user_id, attempt } => refresh::run(ctx, user_id, attempt).await,
        Job::Sweep { sweep_id } => {
            // Idempotent: pushes only what the database says is still owed.
            crate::sweeper::reconcile_sweep(ctx, sweep_id, ctx.settings.job_lost_after).await?;
            Ok(Ran::Done)
        }
        Job::ApplyWebhook { event_id } => crate::webhook::run(ctx, event_id).await,
    }
}

/// `error: cause: cause…`, each cause once (sea-orm repeats its source in its own message).
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !chain.ends_with(&cause_text) {
            chain = format!("{chain}: {cause_text}");
        }
        source = cause.source();
    }
    chain
}
