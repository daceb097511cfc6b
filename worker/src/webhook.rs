//! The *apply webhook* job: a recorded Patreon delivery becomes the member's state at once,
//! then a recheck through the API confirms it.

use apalis::prelude::BoxDynError;
use domain::{
    job_requests::{self, Requested},
    jobs::Job,
    leases,
    membership_checks::CheckTrigger,
    metrics::metrics,
    webhooks::{self, Applied},
};

use crate::{WorkerCtx, jobs::Ran};

/// Applying a delivery takes milliseconds, so a delivery that finds its member busy (a burst of
/// deliveries for one member, or a check) tries again soon rather than after a check's 5 s.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

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
                    ctx.queue.push_after(again, BUSY_RETRY).await?;
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
    // The recheck reads Patreon itself; deliveries can be stale or out of order. It is recorded
    // as a request, so the reconciler pushes it again if the queue loses it (a worker killed
    // with it in flight). One already open runs after this delivery and reads Patreon then:
    // applying runs under the member's lease, which a running check holds.
    let requested = job_requests::request_verification(
        &ctx.db,
        user_id,
        None,
        CheckTrigger::Webhook,
        chrono::Duration::zero(),
        chrono::Utc::now(),
    )
    .await?;
    if let Requested::New(request) = requested {
        job_requests::push(&ctx.db, &ctx.queue, &request).await?;
    }
    Ok(Ran::Done)
}
