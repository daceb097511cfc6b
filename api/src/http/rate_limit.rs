//! Per-client limits on the sign-in and token routes (brute force, state flooding, Patreon
//! budget), and a separate, larger one on the webhook, keyed on the client address (IPv6 by its
//! /64, which one subscriber usually holds whole) and the route group; over the limit → 429 +
//! Retry-After. With `REDIS_URL` the budget is shared by every api process (a fixed one-minute
//! window in Redis); if Redis stops answering, each process falls back to its own limiter.

use std::{
    net::{IpAddr, Ipv6Addr},
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
    Webhook,
}

impl RouteGroup {
    fn of(path: &str) -> Option<Self> {
        match path {
            "/api/auth/patreon/login" => Some(Self::Login),
            "/api/auth/patreon/callback" => Some(Self::Callback),
            "/api/auth/refresh" | "/api/auth/token" => Some(Self::Token),
            "/api/patreon/webhook" => Some(Self::Webhook),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Callback => "callback",
            Self::Token => "token",
            Self::Webhook => "webhook",
        }
    }
}

/// The address a budget is kept for: IPv4 as is, IPv6 by its /64 (a single subscriber gets a
/// whole /64 and can pick any address in it).
fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
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

/// One per-minute budget per client and route group, kept in this process.
struct LocalBudget {
    per_minute: NonZeroU32,
    limiter: DefaultKeyedRateLimiter<(RouteGroup, IpAddr)>,
}

impl LocalBudget {
    /// `per_minute` requests, with bursts up to the same number.
    fn new(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            per_minute,
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
        }
    }
}

pub struct ClientRateLimiter {
    auth: LocalBudget,
    webhook: LocalBudget,
    shared: Option<SharedBudget>,
}

impl ClientRateLimiter {
    /// `auth_per_minute` per client on each sign-in and token route group, `webhook_per_minute`
    /// per client on the webhook; shared through `redis` when given.
    pub fn new(
        auth_per_minute: u32,
        webhook_per_minute: u32,
        redis: Option<(ConnectionManager, String)>,
    ) -> Self {
        Self {
            auth: LocalBudget::new(auth_per_minute),
            webhook: LocalBudget::new(webhook_per_minute),
            shared: redis.map(|(redis, key_prefix)| SharedBudget { redis, key_prefix }),
        }
    }

    /// `Err(seconds to wait)` when the client is over its budget.
    async fn check(&self, group: RouteGroup, ip: IpAddr) -> Result<(), u64> {
        let ip = bucket(ip);
        let budget = match group {
            RouteGroup::Webhook => &self.webhook,
            _ => &self.auth,
        };
        if let Some(shared) = &self.shared {
            match shared.hit(group, ip, budget.per_minute.get()).await {
                Ok(verdict) => return verdict,
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limit unavailable; limiting locally")
                }
            }
        }
        budget.limiter.check_key(&(group, ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + 1
        })
    }

    /// Forgets idle clients so the local tables do not grow without bound.
    pub fn shrink(&self) {
        for budget in [&self.auth, &self.webhook] {
            budget.limiter.retain_recent();
            budget.limiter.shrink_to_fit();
        }
    }
}

pub async fn limit_auth_routes<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    if let (Some(group), Some(state)) = (RouteGroup::of(req.uri().path()), req.data::<AppState>()) {
        let ip = client_ip(&req, &state.settings.trusted_proxies);
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

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_ipv4_ones_per_address() {
        let ip = |s: &str| s.parse().unwrap();
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("2001:db8:1:2::ffff")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("2001:db8:1:3::1")), ip("2001:db8:1:3::"));
        assert_eq!(bucket(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(bucket(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
