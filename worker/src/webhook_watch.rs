//! Watches our webhooks at Patreon. Patreon pauses a webhook after repeated failed deliveries and
//! then queues events silently, so a paused webhook looks like a quiet campaign from here: the
//! worker asks Patreon every few minutes and exports what it sees, for the alert rules.

use std::time::Duration;

use domain::{
    infra::metrics::{WebhookStateLabels, metrics},
    patreon::{PatreonClient, PatreonError},
};

/// One call per replica per period: far inside the client's budget.
const PERIOD: Duration = Duration::from_secs(5 * 60);

/// What Patreon reports about our webhooks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookHealth {
    pub active: i64,
    pub paused: i64,
    pub most_consecutive_failures: i64,
}

/// Asks Patreon once and updates the metrics. On failure the metrics keep their last values:
/// an outage at Patreon says nothing about our webhooks.
pub async fn observe(patreon: &PatreonClient) -> Result<WebhookHealth, PatreonError> {
    let hooks = patreon.list_webhooks().await?;
    let paused = hooks.iter().filter(|h| h.paused).count() as i64;
    let health = WebhookHealth {
        active: hooks.len() as i64 - paused,
        paused,
        most_consecutive_failures: hooks
            .iter()
            .map(|h| i64::from(h.num_consecutive_times_failed))
            .max()
            .unwrap_or(0),
    };
    let m = metrics();
    for (state, n) in [("active", health.active), ("paused", health.paused)] {
        m.patreon_webhooks
            .get_or_create(&WebhookStateLabels { state })
            .set(n);
    }
    m.patreon_webhook_failures
        .set(health.most_consecutive_failures);
    Ok(health)
}

/// Runs for the life of the process when webhooks are in use (a webhook secret and the creator
/// token that may list them are both configured).
pub async fn run(patreon: PatreonClient) {
    let mut tick = tokio::time::interval(PERIOD);
    loop {
        tick.tick().await;
        match observe(&patreon).await {
            Ok(h) if h.paused > 0 => tracing::warn!(
                paused = h.paused,
                "Patreon paused our webhook: run `worker webhook status`, fix the endpoint, then `worker webhook enable <id>`"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot list our webhooks at Patreon"),
        }
    }
}
