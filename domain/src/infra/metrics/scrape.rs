//! Serving a scrape of `/metrics`: who may read it.

use chrono::Utc;
use sea_orm::ConnectionTrait;

use super::metrics;
use crate::work::schedule::SweepSchedule;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether a scrape may read the metrics: only with `Authorization: Bearer <METRICS_TOKEN>`
/// (compared in constant time). Without `METRICS_TOKEN` nobody may: what the service does and
/// how busy it is stays private unless the operator chose a token.
pub fn scrape_allowed(token: Option<&secrecy::SecretString>, authorization: Option<&str>) -> bool {
    use secrecy::ExposeSecret;
    match token {
        None => false,
        Some(expected) => authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|given| {
                crate::infra::secrets::constant_time_eq(given.trim(), expected.expose_secret())
            }),
    }
}

/// What a scrape of `/metrics` came to.
pub enum Scrape {
    Metrics(String),
    /// `METRICS_TOKEN` is not set: `/metrics` is off.
    Disabled,
    /// `METRICS_TOKEN` is set and the scraper did not present it.
    Unauthorized,
    /// The database did not answer the gauges' queries.
    Unavailable,
}

/// Serves one scrape: checks the token, reads the gauges, renders everything.
pub async fn scrape(
    token: Option<&secrecy::SecretString>,
    authorization: Option<&str>,
    db: &impl ConnectionTrait,
    schedule: &SweepSchedule,
) -> Scrape {
    if token.is_none() {
        return Scrape::Disabled;
    }
    if !scrape_allowed(token, authorization) {
        return Scrape::Unauthorized;
    }
    match metrics().render(db, schedule, Utc::now()).await {
        Ok(body) => Scrape::Metrics(body),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read metrics from the database");
            Scrape::Unavailable
        }
    }
}
