//! The *apply webhook* job: a recorded Patreon delivery becomes the member's state at once,
//! then a recheck through the API confirms it.

use apalis::prelude::BoxDynError;
use domain::WebhookEventId;
use domain::{
    work::check_job::CHECK_LEASE,
    work::jobs::Job,
    work::leases,
    work::ledger::push,
    work::webhooks::{self, Applied},
};

use crate::{WorkerCtx, ran::Ran};

/// Applying a delivery takes milliseconds, so a delivery that finds its member busy (a burst of
/// deliveries for one member, or a check) tries again soon rather than after a check's 5 s.
const BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run(ctx: &WorkerCtx, event_id: WebhookEventId) -> Result<Ran, BoxDynError> {
    // Under the member's check lease: a delivery applied alongside another delivery or a check
    // of the same member would write over it with the state it read before.
    let lease = match webhooks::member_of(&ctx.db, event_id).await? {
        Some(user_id) => {
            let key = leases::member_key(user_id);
            match leases::try_acquire(&ctx.db, &key, CHECK_LEASE).await? {
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
        Some(lease) => leases::while_held(&ctx.db, lease, CHECK_LEASE, applying).await?,
        None => applying.await?,
    };
    tracing::info!(
        event_id = i64::from(event_id),
        ?applied,
        "webhook processed"
    );
    let recheck = match applied {
        Applied::Applied { recheck, .. } | Applied::Stale { recheck, .. } => recheck,
        Applied::Waiting | Applied::Nothing => None,
    };
    // Recorded with the event, so if this push is lost (a worker killed right here) the
    // reconciler pushes it again.
    if let Some(request) = recheck {
        push::push_request(&ctx.db, &ctx.queue, &request).await?;
    }
    Ok(Ran::Done)
}
