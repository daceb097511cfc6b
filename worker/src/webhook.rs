//! The *apply webhook* job: a recorded Patreon delivery becomes the member's state at once,
//! then a recheck through the API confirms it.

use apalis::prelude::BoxDynError;
use domain::{
    jobs::Job,
    leases,
    membership_checks::CheckTrigger,
    metrics::metrics,
    webhooks::{self, Applied},
};

use crate::{WorkerCtx, jobs::Ran};

pub async fn run(ctx: &WorkerCtx, event_id: i64) -> Result<Ran, BoxDynError> {
    // Under the member's check lease: a delivery applied alongside another delivery or a check
    // of the same member would write over it with the state it read before.
    let lease = match webhooks::member_of(&ctx.db, event_id).await? {
        Some(user_id) => {
            let key = crate::verify::lease_key(user_id);
            match leases::try_acquire(&ctx.db, &key, crate::verify::CHECK_LEASE).await? {
                Some(lease) => Some(lease),
                None => {
                    let again = Job::ApplyWebhook { event_id };
                    ctx.queue
                        .push_after(again, crate::verify::BUSY_RETRY)
                        .await?;
                    return Ok(Ran::Deferred);
                }
            }
        }
        None => None,
    };
    let now = chrono::Utc::now();
    let applying = webhooks::apply(&ctx.db, &ctx.settings.membership, event_id, now);
    let applied = match lease {
        Some(lease) => {
            leases::while_held(&ctx.db, lease, crate::verify::CHECK_LEASE, applying).await?
        }
        None => applying.await?,
    };
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
