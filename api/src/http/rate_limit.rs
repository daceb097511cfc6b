//! Per-client limits on the sign-in and token routes (brute force, state flooding, Patreon
//! budget), keyed on the client address and the route group; over the limit → 429 +
//! Retry-After. With `REDIS_URL` the budget is shared by every api process (a fixed one-minute
//! window in Redis); if Redis stops answering, each process falls back to its own limiter.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    time::{SystemTime, UNIX_EPOCH},
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock, clock::DefaultClock};
use poem::{
    Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue, http::StatusCode,
};
use redis::aio::ConnectionManager;

use crate::{error::ApiError, http::client_ip::client_ip, state::AppState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RouteGroup {
    Login,
    Callback,
    Token,
}

impl RouteGroup {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/api/auth/patreon/login" => Some(Self::Login),
            "/api/auth/patreon/callback" => Some(Self::Callback),
            "/api/auth/refresh" | "/api/auth/token" => Some(Self::Token),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Callback => "callback",
            Self::Token => "token",
        }
    }
}

/// The deployment-wide budget in Redis.
struct SharedBudget {
    redis: ConnectionManager,
    key_prefix: String,
}

impl SharedBudget {
    /// Counts one request; `Err(seconds)` when over `limit` in the current minute.
    async fn hit(
        &self,
        group: RouteGroup,
        ip: IpAddr,
        limit: u32,
    ) -> Result<Result<(), u64>, redis::RedisError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let key = format!(
            "{}:ratelimit:{}:{ip}:{}",
            self.key_prefix,
            group.name(),
            now / 60
        );
        let mut conn = self.redis.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&key, 1u64)
            .expire(&key, 120)
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(if count > u64::from(limit) {
            Err(60 - now % 60)
        } else {
            Ok(())
        })
    }
}

pub struct AuthRateLimiter {
    per_minute: NonZeroU32,
    local: DefaultKeyedRateLimiter<(RouteGroup, IpAddr)>,
    shared: Option<SharedBudget>,
}

impl AuthRateLimiter {
    /// `per_minute` requests per client and route group, with bursts up to the same number;
    /// shared through `redis` when given.
    pub fn new(per_minute: u32, redis: Option<(ConnectionManager, String)>) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            per_minute,
            local: RateLimiter::keyed(Quota::per_minute(per_minute)),
            shared: redis.map(|(redis, key_prefix)| SharedBudget { redis, key_prefix }),
        }
    }

    /// `Err(seconds to wait)` when the client is over its budget.
    async fn check(&self, group: RouteGroup, ip: IpAddr) -> Result<(), u64> {
        if let Some(shared) = &self.shared {
            match shared.hit(group, ip, self.per_minute.get()).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; limiting locally")
                }
            }
        }
        self.local.check_key(&(group, ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }

    /// Forgets idle clients so the local table does not grow without bound.
    pub fn shrink(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}

pub async fn limit_auth_routes<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let (Some(group), Some(state)) = (RouteGroup::of(req.uri().path()), req.data::<AppState>()) {
        let ip = client_ip(&req, state.settings.trust_proxy_headers);
        if let Err(retry_after) = state.rate_limiter.check(group, ip).await {
            tracing::warn!(group = group.name(), "rate limit exceeded");
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
