//! Fault injection (latency, hangs, scripted failures, random 5xx) and Patreon's rate limits.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use poem::Response;
use serde::{Deserialize, Serialize};

use crate::errors::{api_error, json_response, rate_limited, token_error, unauthorized};
use crate::state::Shared;

/// Faults to inject; `PUT /__mock/faults` or [`crate::MockPatreon::set_faults`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every token/identity/members/webhooks request.
    pub latency_ms: u64,
    pub token: EndpointFault,
    pub identity: EndpointFault,
    /// Campaign members list and single member.
    pub members: EndpointFault,
    /// The webhooks API (list, create, update); not the deliveries.
    pub webhooks: EndpointFault,
    /// Percentage (0..=100) of token/identity/members/webhooks requests answered 500/502/503.
    pub random_5xx_percent: u8,
    pub rate_limit: Option<RateLimit>,
}

/// A scripted failure for one endpoint.
///
/// While `fail_next > 0`, each request consumes one: it sleeps `hang_ms`, then answers
/// `status` (0 = 500) with `body` (or invalid JSON if `bad_json`, or Patreon's error body for
/// that status). With `fail_next == 0`, a non-zero `hang_ms` delays every request, which is
/// then answered normally.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointFault {
    pub fail_next: u32,
    pub status: u16,
    pub retry_after_secs: Option<u64>,
    pub hang_ms: u64,
    pub bad_json: bool,
    pub body: Option<serde_json::Value>,
}

/// Patreon's limits (0 disables that limit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// All requests of the client per 2 s (Patreon: 100).
    pub per_client_per_2s: u32,
    /// Requests per bearer or refresh token per minute (Patreon: 100); refreshing does not
    /// reset the budget.
    pub per_token_per_min: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_client_per_2s: 100,
            per_token_per_min: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ep {
    Token,
    Identity,
    Members,
    Webhooks,
}

impl Faults {
    fn endpoint_mut(&mut self, ep: Ep) -> &mut EndpointFault {
        match ep {
            Ep::Token => &mut self.token,
            Ep::Identity => &mut self.identity,
            Ep::Members => &mut self.members,
            Ep::Webhooks => &mut self.webhooks,
        }
    }
}

enum Failure {
    Scripted(EndpointFault),
    Random(u16),
}

/// Sleep as configured, then return the failure response if this request must fail.
pub(crate) async fn inject(shared: &Shared, ep: Ep) -> Option<Response> {
    let (delay_ms, failure) = {
        let mut inner = shared.lock();
        let faults = &mut inner.faults;
        let latency = faults.latency_ms;
        let pct = faults.random_5xx_percent.min(100);
        let f = faults.endpoint_mut(ep);
        if f.fail_next > 0 {
            f.fail_next -= 1;
            (latency + f.hang_ms, Some(Failure::Scripted(f.clone())))
        } else if pct > 0 && rand::random_range(0..100u8) < pct {
            let status = [500, 502, 503][rand::random_range(0..3usize)];
            (latency + f.hang_ms, Some(Failure::Random(status)))
        } else {
            (latency + f.hang_ms, None)
        }
    };
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    failure.map(|f| failure_response(f, ep))
}

fn failure_response(failure: Failure, ep: Ep) -> Response {
    let f = match failure {
        Failure::Random(status) => return default_body(status, ep, None),
        Failure::Scripted(f) => f,
    };
    let status = if f.status == 0 { 500 } else { f.status };
    let mut resp = if f.bad_json {
        Response::builder()
            .status(poem::http::StatusCode::from_u16(status).unwrap_or_default())
            .content_type("application/json")
            .body("{\"data\": {\"type\": \"user\", \"id\": ")
    } else if let Some(body) = &f.body {
        json_response(status, body)
    } else {
        default_body(status, ep, f.retry_after_secs)
    };
    if let Some(secs) = f.retry_after_secs
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

fn default_body(status: u16, ep: Ep, retry_after: Option<u64>) -> Response {
    match (status, ep) {
        (429, _) => rate_limited(retry_after.unwrap_or(1)),
        (401, Ep::Token) => token_error(401, "invalid_grant", None),
        (401, _) => unauthorized(),
        (400..=499, Ep::Token) => token_error(status, "invalid_request", None),
        (500..=599, _) => api_error(
            status,
            None,
            "InternalServerError",
            "Internal Server Error",
            "Injected fault.",
        ),
        _ => api_error(status, None, "Error", "Error", "Injected fault."),
    }
}

#[derive(Default, Clone, Copy)]
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    /// Count a request; `Err(retry_after_secs)` when over `limit` (0 = unlimited).
    fn hit(&mut self, now: Instant, len: Duration, limit: u32) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let start = match self.start {
            Some(s) if now.duration_since(s) < len => s,
            _ => {
                self.start = Some(now);
                self.count = 0;
                now
            }
        };
        if self.count >= limit {
            let left = len.saturating_sub(now.duration_since(start));
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(secs.max(1));
        }
        self.count += 1;
        Ok(())
    }
}

/// Fixed-window counters: one for the client, one per token family.
#[derive(Default)]
pub(crate) struct Limiter {
    client: Window,
    tokens: HashMap<u64, Window>,
}

/// Client-wide limit (every API request). `Some(429)` when exceeded.
pub(crate) fn check_client_rate(shared: &Shared) -> Option<Response> {
    let mut inner = shared.lock();
    let limit = inner.faults.rate_limit.clone()?;
    let res = inner.limiter.client.hit(
        Instant::now(),
        Duration::from_secs(2),
        limit.per_client_per_2s,
    );
    res.err().map(|secs| {
        inner.stats.rate_limited += 1;
        rate_limited(secs)
    })
}

/// Per-token limit for a token family. `Some(429)` when exceeded.
pub(crate) fn check_token_rate(shared: &Shared, family: u64) -> Option<Response> {
    let mut inner = shared.lock();
    let limit = inner.faults.rate_limit.clone()?;
    let window = inner.limiter.tokens.entry(family).or_default();
    let res = window.hit(
        Instant::now(),
        Duration::from_secs(60),
        limit.per_token_per_min,
    );
    res.err().map(|secs| {
        inner.stats.rate_limited += 1;
        rate_limited(secs)
    })
}

/// New faults also restart the rate-limit windows.
pub(crate) fn set_faults(shared: &Shared, faults: Faults) {
    let mut inner = shared.lock();
    inner.faults = faults;
    inner.limiter = Limiter::default();
}
