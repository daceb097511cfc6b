//! The *apply webhook* job: a recorded Patreon delivery becomes the member's state at once,
//! then a recheck through the API confirms it.

use apalis::prelude::BoxDynError;
use domain::{
    jobs::Job,
    membership_checks::CheckTrigger,
    metrics::metrics,
    webhooks::{self, Applied},
};

use crate::{WorkerCtx, jobs::Ran};

pub async fn run(ctx: &WorkerCtx, event_id: i64) -> Result<Ran, BoxDynError> {
    let now = chrono::Utc::now();
    let applied = webhooks::apply(&ctx.db, &ctx.settings.membership, event_id, now).await?;
    tracing::info!(event_id, ?applied, "webhook processed");
    let user_id = match applied {
        Applied::Applied {
            user_id,
            changed: true,
        }
        | Applied::Stale {
            user_id,
            recheck: true,
        } => user_id,
        // Nothing changed (the delivery says what we had), or a check that ran after this
        // delivery arrived already knows better: nothing to confirm with Patreon.
        Applied::Applied { changed: false, .. }
        | Applied::Stale { recheck: false, .. }
        | Applied::Waiting
        | Applied::Nothing => return Ok(Ran::Done),
    };
    if let Some(received) = webhooks::received_at(&ctx.db, event_id).await? {
        let lag = (chrono::Utc::now() - received).num_milliseconds().max(0) as f64 / 1000.0;
        metrics().webhook_lag_seconds.observe(lag);
    }
    // The recheck reads Patreon itself; deliveries can be stale or out of order.
    let recheck = Job::VerifyMembership {
        user_id,
        trigger: CheckTrigger::Webhook,
        request_id: None,
        sweep_id: None,
    };
    ctx.queue.push(recheck).await?;
    Ok(Ran::Done)
}
