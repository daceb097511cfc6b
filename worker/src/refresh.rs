//! The *refresh token* job: keeps one member's Patreon pair alive before it expires.
//!
//! Refresh tokens are single use; `domain::patreon::tokens::refresh_if_expiring` holds a per-member lease
//! in the database, so however many of these jobs run for one member, anywhere, Patreon sees
//! one refresh. `invalid_grant` flags the member once; later jobs see the flag and stop.

use apalis::prelude::{AbortError, BoxDynError};
use domain::UserId;
use domain::{
    Error,
    patreon::tokens,
    patreon::{PatreonError, budget::DEFAULT_PAUSE},
    work::jobs::{Job, MAX_ATTEMPTS, retry_delay},
};

use crate::{WorkerCtx, ran::Ran};

pub async fn run(ctx: &WorkerCtx, user_id: UserId, attempt: i32) -> Result<Ran, BoxDynError> {
    let cipher = &ctx.settings.token_cipher;
    let within = ctx.token_horizon();
    match tokens::refresh_if_expiring(&ctx.db, &ctx.patreon, cipher, user_id, within).await {
        Ok(outcome) => {
            tracing::debug!(
                user_id = i64::from(user_id),
                ?outcome,
                "token refresh job done"
            );
            Ok(Ran::Done)
        }
        // The link is dead (now or before): recorded once, nothing left to do.
        Err(Error::NeedsRelogin) => Ok(Ran::Done),
        // Rate limited: the deployment's limit, not this member's failure, so no attempt spent.
        Err(Error::Patreon(PatreonError::RateLimited { retry_after })) => {
            let retry = Job::RefreshToken { user_id, attempt };
            let delay = retry_after.unwrap_or(DEFAULT_PAUSE);
            ctx.queue.push_after(retry, delay).await?;
            tracing::info!(
                user_id = i64::from(user_id),
                attempt,
                "token refresh rate limited; deferred"
            );
            Ok(Ran::Deferred)
        }
        Err(Error::Patreon(e)) if e.is_transient() && attempt + 1 < MAX_ATTEMPTS => {
            let next = attempt + 1;
            let delay = retry_delay(&e, next);
            let retry = Job::RefreshToken {
                user_id,
                attempt: next,
            };
            ctx.queue.push_after(retry, delay).await?;
            tracing::info!(
                user_id = i64::from(user_id),
                attempt = next,
                reason = e.kind(),
                "token refresh retry queued"
            );
            Ok(Ran::Retrying)
        }
        Err(e) => {
            tracing::warn!(user_id = i64::from(user_id), error = %e, "token refresh failed");
            Err(AbortError::new(e).into())
        }
    }
}
