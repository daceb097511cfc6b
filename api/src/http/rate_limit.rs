//! Per-client limits on the sign-in and token routes (brute force, state flooding, Patreon
//! budget). Keyed on the client address and the route group; over the limit → 429 + Retry-After.

use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock, clock::DefaultClock};
use poem::{
    Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue, http::StatusCode,
};

use crate::{error::ApiError, http::client_ip::client_ip, state::AppState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RouteGroup {
    Login,
    Callback,
    Token,
}

fn route_group(path: &str) -> Option<RouteGroup> {
    match path {
        "/api/auth/patreon/login" => Some(RouteGroup::Login),
        "/api/auth/patreon/callback" => Some(RouteGroup::Callback),
        "/api/auth/refresh" | "/api/auth/token" => Some(RouteGroup::Token),
        _ => None,
    }
}

pub struct AuthRateLimiter {
    limiter: DefaultKeyedRateLimiter<(RouteGroup, IpAddr)>,
}

impl AuthRateLimiter {
    /// `per_minute` requests per client and route group, with bursts up to the same number.
    pub fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }

    /// `Err(seconds to wait)` when the client is over its budget.
    fn check(&self, group: RouteGroup, ip: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&(group, ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }

    /// Forgets idle clients so the table does not grow without bound.
    pub fn shrink(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

pub async fn limit_auth_routes<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let (Some(group), Some(state)) = (route_group(req.uri().path()), req.data::<AppState>()) {
        let ip = client_ip(&req, state.settings.trust_proxy_headers);
        if let Err(retry_after) = state.rate_limiter.check(group, ip) {
            tracing::warn!(?group, "rate limit exceeded");
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many attempts. Try again later.",
            )
            .to_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert("Retry-After", value);
            }
            return Ok(response);
        }
    }
    Ok(next.call(req).await?.into_response())
}
