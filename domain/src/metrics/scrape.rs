//! Serving a scrape of `/metrics`: who may read it, and bounded route labels.

use chrono::Utc;
use sea_orm::ConnectionTrait;

use super::metrics;
use crate::schedule::SweepSchedule;

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether a scrape may read the metrics: always without `METRICS_TOKEN`, else only with
/// `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time).
pub fn scrape_allowed(token: Option<&secrecy::SecretString>, authorization: Option<&str>) -> bool {
    use secrecy::ExposeSecret;
    match token {
        None => true,
        Some(expected) => authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|given| {
                crate::secrets::constant_time_eq(given.trim(), expected.expose_secret())
            }),
    }
}

/// What a scrape of `/metrics` came to.
pub enum Scrape {
    Metrics(String),
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

/// A bounded route label: path segments that look like ids become `:id`.
pub fn route_label(path: &str) -> String {
    if path.len() > 200 {
        return "other".into();
    }
    let route: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let id_like = segment.len() >= 16
                || (!segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()));
            if id_like { ":id" } else { segment }
        })
        .collect();
    let route = route.join("/");
    // Anything not under our own prefixes (scanners, typos) is one label, not thousands.
    let known = [
        "/api/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/openapi.json",
        "/admin",
        "/demo.js",
    ];
    if route == "/" || known.iter().any(|k| route.starts_with(k)) {
        route
    } else {
        "other".into()
    }
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn routes_keep_their_shape_but_never_an_id() {
        assert_eq!(route_label("/api/auth/me"), "/api/auth/me");
        assert_eq!(
            route_label("/api/admin/members/42/recheck"),
            "/api/admin/members/:id/recheck"
        );
        assert_eq!(
            route_label("/api/jobs/3f9a0c1b2d4e5f60718293a4"),
            "/api/jobs/:id"
        );
        assert_eq!(route_label("/wp-login.php"), "other");
        assert_eq!(route_label(&"/api/".repeat(100)), "other");
    }
}
