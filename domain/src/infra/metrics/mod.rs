//! Prometheus metrics of this process, in the OpenMetrics text format Prometheus scrapes.
//! Counters are recorded where things happen; gauges that describe stored state (work owed,
//! dead jobs, sweep lag) are read from the database when scraped, so every replica reports the
//! same truth. Label values are bounded sets: never ids, tokens or raw paths.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::{job_request, sweep, sweep_item};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{Result, work::schedule::SweepSchedule};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// One of a fixed set of methods, or `OTHER`.
    pub method: String,
    /// The matched route template (`/api/jobs/{id}`), or `other`.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PatreonLabels {
    /// `token`, `identity` or `member`.
    pub endpoint: &'static str,
    /// `ok` or the error kind (`rate_limited`, `unavailable`, …).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    pub trigger: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `verify_membership`, `refresh_token` or `sweep`.
    pub kind: &'static str,
    /// `pushed`, `started`, `succeeded`, `retried` or `dead`.
    pub event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookStateLabels {
    /// `active` or `paused`.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueStateLabels {
    /// `waiting`, `running`, `done` or `dead`.
    pub state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub webhooks: Family<OutcomeLabels, Counter>,
    pub webhook_lag_seconds: Histogram,
    pub http_requests: Family<HttpLabels, Histogram>,
    pub sign_ins: Family<OutcomeLabels, Counter>,
    pub patreon_requests: Family<PatreonLabels, Counter>,
    pub token_refreshes: Family<OutcomeLabels, Counter>,
    pub membership_checks: Family<CheckLabels, Counter>,
    pub jobs: Family<JobLabels, Counter>,
    jobs_owed: Gauge,
    dead_jobs: Gauge,
    sweep_remaining: Gauge,
    sweep_lag_seconds: Gauge,
    /// Our webhooks at Patreon by state, as the worker last saw them (worker only).
    pub patreon_webhooks: Family<WebhookStateLabels, Gauge>,
    /// The most consecutive failed deliveries Patreon reports for any of our webhooks.
    pub patreon_webhook_failures: Gauge,
    /// Jobs the queue holds by state, as the worker last counted them (worker only).
    pub queue_jobs: Family<QueueStateLabels, Gauge>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("gate");
        let http_requests = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to about 8 s.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.000_25, 2.0, 16,
            ))
        });
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests served, by method, route and status",
            http_requests.clone(),
        );
        let webhooks = Family::default();
        registry.register(
            "webhook_deliveries",
            "Patreon webhook deliveries, by outcome (accepted, duplicate, other_campaign, bad_signature, malformed, too_large, not_configured)",
            webhooks.clone(),
        );
        let webhook_lag_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 14),
        );
        registry.register(
            "webhook_lag_seconds",
            "From receiving a webhook to its change being stored",
            webhook_lag_seconds.clone(),
        );
        let sign_ins = Family::default();
        registry.register(
            "sign_ins",
            "Patreon sign-ins finished, by outcome (ok or the failure reason)",
            sign_ins.clone(),
        );
        let patreon_requests = Family::default();
        registry.register(
            "patreon_requests",
            "Calls to Patreon, by endpoint and outcome",
            patreon_requests.clone(),
        );
        let token_refreshes = Family::default();
        registry.register(
            "token_refreshes",
            "Patreon token refreshes, by outcome (ok, transient, dead_link, error)",
            token_refreshes.clone(),
        );
        let membership_checks = Family::default();
        registry.register(
            "membership_checks",
            "Membership checks recorded, by trigger and outcome",
            membership_checks.clone(),
        );
        let jobs = Family::default();
        registry.register("jobs", "Background job events, by job kind", jobs.clone());
        let jobs_owed = Gauge::default();
        registry.register(
            "jobs_owed",
            "Jobs the database says are still owed (open rechecks, sweep checks not done)",
            jobs_owed.clone(),
        );
        let dead_jobs = Gauge::default();
        registry.register(
            "dead_jobs",
            "Jobs that gave up and wait for an admin's retry",
            dead_jobs.clone(),
        );
        let sweep_remaining = Gauge::default();
        registry.register(
            "sweep_members_remaining",
            "Members the running sweeps still owe a check",
            sweep_remaining.clone(),
        );
        let sweep_lag_seconds = Gauge::default();
        registry.register(
            "sweep_lag_seconds",
            "Seconds since the latest scheduled tick while its sweep has not finished (0 when it has)",
            sweep_lag_seconds.clone(),
        );
        let patreon_webhooks = Family::default();
        registry.register(
            "patreon_webhooks",
            "Webhooks registered at Patreon for this client, by state (active, paused); polled by the worker",
            patreon_webhooks.clone(),
        );
        let patreon_webhook_failures = Gauge::default();
        registry.register(
            "patreon_webhook_consecutive_failures",
            "The most consecutive failed deliveries Patreon reports for one of our webhooks",
            patreon_webhook_failures.clone(),
        );
        let queue_jobs = Family::default();
        registry.register(
            "queue_jobs",
            "Jobs held by the job queue, by state (waiting, running, done, dead; finished ones until QUEUE_RETENTION_HOURS); counted by the worker",
            queue_jobs.clone(),
        );
        Self {
            registry,
            webhooks,
            webhook_lag_seconds,
            http_requests,
            sign_ins,
            patreon_requests,
            token_refreshes,
            membership_checks,
            jobs,
            jobs_owed,
            dead_jobs,
            sweep_remaining,
            sweep_lag_seconds,
            patreon_webhooks,
            patreon_webhook_failures,
            queue_jobs,
        }
    }

    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    pub fn job(&self, kind: &'static str, event: &'static str) {
        self.jobs.get_or_create(&JobLabels { kind, event }).inc();
    }

    /// Reads the gauges from the database, then renders everything.
    pub async fn render(
        &self,
        db: &impl ConnectionTrait,
        schedule: &SweepSchedule,
        now: DateTime<Utc>,
    ) -> Result<String> {
        self.read_gauges(db, schedule, now).await?;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        Ok(out)
    }

    async fn read_gauges(
        &self,
        db: &impl ConnectionTrait,
        schedule: &SweepSchedule,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let open_requests = job_request::Entity::find()
            .filter(job_request::Column::Status.is_in(["queued", "running"]))
            .count(db)
            .await?;
        let failed_requests = job_request::Entity::find()
            .filter(job_request::Column::Status.eq("failed"))
            .count(db)
            .await?;
        let unfinished = crate::work::sweeps::unfinished(db).await?;
        let mut remaining = 0;
        for s in &unfinished {
            remaining += sweep_item::Entity::find()
                .filter(sweep_item::Column::SweepId.eq(s.id))
                .filter(sweep_item::Column::Status.ne("done"))
                .count(db)
                .await?;
        }
        let failed_items = sweep_item::Entity::find()
            .filter(sweep_item::Column::Outcome.eq("failed"))
            .count(db)
            .await?;
        let lag = match schedule.latest_at_or_before(now) {
            Some(tick) => {
                let finished = sweep::Entity::find()
                    .filter(sweep::Column::Tick.eq(crate::work::schedule::tick_id(tick)))
                    .filter(sweep::Column::FinishedAt.is_not_null())
                    .count(db)
                    .await?;
                if finished > 0 {
                    0
                } else {
                    (now - tick).num_seconds()
                }
            }
            None => 0,
        };
        let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.jobs_owed.set(as_i64(open_requests + remaining));
        self.dead_jobs.set(as_i64(failed_requests + failed_items));
        self.sweep_remaining.set(as_i64(remaining));
        self.sweep_lag_seconds.set(lag);
        Ok(())
    }
}

mod scrape;
pub use scrape::{CONTENT_TYPE, Scrape, scrape, scrape_allowed};

#[cfg(test)]
mod tests;
