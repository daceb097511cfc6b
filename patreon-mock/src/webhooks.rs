//! Webhooks: registered with the creator token, sent when a membership of the mock's campaign
//! changes (admin routes or `MockPatreon` helpers). As on Patreon, a failed delivery stays
//! queued, three failures in a row pause the webhook (events keep queueing), and a success or an
//! unpause sends the backlog. Events are sent one at a time per webhook, oldest first.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use md5::Md5;
use serde::{Deserialize, Serialize};

use crate::model::iso;
use crate::state::{Shared, random_token};
use crate::webhook_events::Event;

/// Every trigger Patreon accepts at registration.
pub(crate) const KNOWN_TRIGGERS: &[&str] = &[
    "members:create",
    "members:update",
    "members:delete",
    "members:pledge:create",
    "members:pledge:update",
    "members:pledge:delete",
    "posts:publish",
    "posts:update",
    "posts:delete",
];
/// Patreon pauses a webhook after repeated failures; the mock after this many in a row.
const PAUSE_AFTER_FAILURES: u32 = 3;
/// A receiver must answer quickly; a hung one counts as a failure.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Patreon retries after hours; the mock retries a failed event after this, until paused.
const RETRY_DELAY: Duration = Duration::from_millis(300);

/// A registered webhook as the API shows it, plus how many events wait for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MockWebhook {
    pub id: String,
    pub uri: String,
    pub triggers: Vec<String>,
    pub secret: String,
    pub paused: bool,
    pub last_attempted_at: Option<String>,
    pub num_consecutive_times_failed: u32,
    /// Events not delivered yet (not part of Patreon's resource).
    pub queued: usize,
}

struct Registered {
    hook: MockWebhook,
    backlog: VecDeque<Event>,
    /// A task is sending this webhook's backlog; at most one at a time keeps the order.
    sending: bool,
}

/// What a sending task needs for the oldest queued event.
struct Delivery {
    uri: String,
    secret: String,
    event: Event,
}

/// Every registered webhook, by numeric id.
#[derive(Default)]
pub(crate) struct Webhooks {
    hooks: BTreeMap<u64, Registered>,
    last_id: u64,
}

/// Changes to a registered webhook (`PATCH` attributes); `None` leaves a value as it is.
#[derive(Default)]
pub(crate) struct WebhookUpdate {
    pub uri: Option<String>,
    pub triggers: Option<Vec<String>>,
    pub paused: Option<bool>,
}

impl Registered {
    fn snapshot(&self) -> MockWebhook {
        MockWebhook {
            queued: self.backlog.len(),
            ..self.hook.clone()
        }
    }

    /// Marks the webhook as being sent, if it should be and is not already.
    fn claim_sending(&mut self) -> bool {
        let start = !self.sending && !self.hook.paused && !self.backlog.is_empty();
        self.sending |= start;
        start
    }
}

impl Webhooks {
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    pub fn register(&mut self, uri: String, triggers: Vec<String>) -> MockWebhook {
        self.last_id += 1;
        let hook = MockWebhook {
            id: self.last_id.to_string(),
            uri,
            triggers,
            secret: random_token(),
            paused: false,
            last_attempted_at: None,
            num_consecutive_times_failed: 0,
            queued: 0,
        };
        let registered = Registered {
            hook,
            backlog: VecDeque::new(),
            sending: false,
        };
        let snapshot = registered.snapshot();
        self.hooks.insert(self.last_id, registered);
        snapshot
    }

    pub fn list(&self) -> Vec<MockWebhook> {
        self.hooks.values().map(Registered::snapshot).collect()
    }

    /// Applies `update`; returns the webhook and whether its backlog must start sending.
    pub fn update(&mut self, id: &str, update: WebhookUpdate) -> Option<(MockWebhook, bool)> {
        let reg = self.hooks.get_mut(&id.parse().ok()?)?;
        if let Some(uri) = update.uri {
            reg.hook.uri = uri;
        }
        if let Some(triggers) = update.triggers {
            reg.hook.triggers = triggers;
        }
        if let Some(paused) = update.paused {
            reg.hook.paused = paused;
        }
        let start = reg.claim_sending();
        Some((reg.snapshot(), start))
    }

    /// Queues `event` for every webhook listening to its trigger, paused or not; returns the
    /// webhooks whose sending must start.
    fn queue(&mut self, event: &Event) -> Vec<u64> {
        let mut start = Vec::new();
        for (id, reg) in &mut self.hooks {
            if reg.hook.triggers.iter().any(|t| t == event.trigger) {
                reg.backlog.push_back(event.clone());
                if reg.claim_sending() {
                    start.push(*id);
                }
            }
        }
        start
    }

    /// The oldest event to send, or `None` (and the sending task ends) when paused or done.
    fn next_delivery(&mut self, id: u64) -> Option<Delivery> {
        let reg = self.hooks.get_mut(&id)?;
        match reg.backlog.front() {
            Some(event) if !reg.hook.paused => Some(Delivery {
                uri: reg.hook.uri.clone(),
                secret: reg.hook.secret.clone(),
                event: event.clone(),
            }),
            _ => {
                reg.sending = false;
                None
            }
        }
    }

    /// Records an attempt at the oldest event: a success removes it and resets the failure
    /// count; a failure keeps it and, the third in a row, pauses the webhook.
    fn record_attempt(&mut self, id: u64, delivered: bool) {
        let Some(reg) = self.hooks.get_mut(&id) else {
            return;
        };
        reg.hook.last_attempted_at = Some(iso(chrono::Utc::now()));
        if delivered {
            reg.backlog.pop_front();
            reg.hook.num_consecutive_times_failed = 0;
        } else {
            reg.hook.num_consecutive_times_failed += 1;
            if reg.hook.num_consecutive_times_failed >= PAUSE_AFTER_FAILURES {
                reg.hook.paused = true;
            }
        }
    }
}

/// Hex HMAC-MD5 of `body` keyed with `secret`: Patreon's `X-Patreon-Signature`.
pub(crate) fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Md5> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

impl Shared {
    /// Queues `events` and starts sending where needed. Call without holding the lock.
    pub(crate) fn publish(self: &Arc<Self>, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let start: Vec<u64> = {
            let mut inner = self.lock();
            events
                .iter()
                .flat_map(|e| inner.webhooks.queue(e))
                .collect()
        };
        self.start_sending(start);
    }

    /// One task per webhook sends its backlog in order.
    pub(crate) fn start_sending(self: &Arc<Self>, ids: impl IntoIterator<Item = u64>) {
        for id in ids {
            let shared = Arc::clone(self);
            self.runtime
                .spawn(async move { shared.send_backlog(id).await });
        }
    }

    async fn send_backlog(&self, id: u64) {
        loop {
            // Its own statement: the lock must be released before sending.
            let next = self.lock().webhooks.next_delivery(id);
            let Some(delivery) = next else {
                return;
            };
            let delivered = self.post(id, &delivery).await;
            {
                let mut inner = self.lock();
                inner.webhooks.record_attempt(id, delivered);
                if delivered {
                    inner.stats.webhook_deliveries += 1;
                } else {
                    inner.stats.webhook_failures += 1;
                }
            }
            if !delivered {
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }

    /// One POST; true when the receiver answered 2xx in time.
    async fn post(&self, id: u64, d: &Delivery) -> bool {
        let signature = sign(&d.secret, d.event.body.as_bytes());
        let result = self
            .http
            .post(&d.uri)
            .timeout(DELIVERY_TIMEOUT)
            .header("Content-Type", "application/json")
            .header("X-Patreon-Event", d.event.trigger)
            .header("X-Patreon-Signature", signature)
            .body(d.event.body.to_string())
            .send()
            .await;
        let trigger = d.event.trigger;
        match result {
            Ok(resp) => {
                let status = resp.status().as_u16();
                tracing::info!(webhook = id, trigger, status, "patreon-mock webhook sent");
                resp.status().is_success()
            }
            Err(err) => {
                let err = err.without_url();
                tracing::info!(webhook = id, trigger, %err, "patreon-mock webhook not delivered");
                false
            }
        }
    }
}
