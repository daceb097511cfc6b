//! `patreon-mock`: a local HTTP mock of Patreon's OAuth and API v2 (authorize, token,
//! `/identity`, campaign members, single member, webhooks and their deliveries) with fault
//! injection, rate limits and admin routes under `/__mock/`. Binds 127.0.0.1 unless told otherwise.

mod admin;
mod api;
mod errors;
mod faults;
mod fixtures;
mod model;
mod oauth;
mod page;
mod render;
mod state;
#[cfg(test)]
mod tests;
mod webhook_api;
mod webhook_events;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Endpoint, EndpointExt, Request, Response, Route, Server, get, patch, post, put};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{EndpointFault, Faults, RateLimit};
pub use fixtures::{GENERATED_FIRST_ID, OTHER_CAMPAIGN_ID, demo_users, generated_patrons};
pub use model::{CREATOR_USER_ID, MockMembership, MockTier, MockUser, member_id_for};
use state::Shared;
pub use webhooks::MockWebhook;

/// Mock configuration.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// 0 = ephemeral.
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    /// The client owner's campaign (visible with scope `identity`; the creator token's campaign).
    pub campaign_id: String,
    pub creator_access_token: Option<String>,
    pub access_token_ttl_secs: i64,
    /// Authorize consents as this user without showing the chooser.
    pub auto_consent_user: Option<String>,
    /// Seed the demo personas ([`demo_users`]).
    pub seed_demo_users: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            port: 0,
            client_id: "mock-client-id".into(),
            client_secret: "mock-client-secret".into(),
            campaign_id: "1234560".into(),
            creator_access_token: Some("mock-creator-token".into()),
            access_token_ttl_secs: 2_678_400,
            auto_consent_user: None,
            seed_demo_users: false,
        }
    }
}

/// Request counters (`GET /__mock/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MockStats {
    pub authorize: u64,
    pub token_code_grants: u64,
    pub token_refresh_grants: u64,
    pub identity_calls: u64,
    pub member_calls: u64,
    pub rate_limited: u64,
    pub last_token_request_redirect_uri: Option<String>,
    pub last_authorize_query: Option<String>,
    /// Webhook POSTs answered 2xx.
    pub webhook_deliveries: u64,
    /// Webhook POSTs that failed (non-2xx, timeout, unreachable).
    pub webhook_failures: u64,
}

/// A running mock. Dropping it (or [`MockPatreon::shutdown`]) stops the server.
pub struct MockPatreon {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Log method, path (never the query: it carries codes and state) and status.
async fn log_request<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = ep.get_response(req).await;
    tracing::info!(%method, %path, status = resp.status().as_u16(), "patreon-mock");
    Ok(resp)
}

pub(crate) fn app(shared: Arc<Shared>) -> impl Endpoint<Output = Response> {
    Route::new()
        .at("/oauth2/authorize", get(oauth::authorize))
        .at("/api/oauth2/token", post(oauth::token))
        .at("/api/oauth2/v2/identity", get(api::identity))
        .at(
            "/api/oauth2/v2/campaigns/:campaign_id/members",
            get(api::campaign_members),
        )
        .at("/api/oauth2/v2/members/:member_id", get(api::member))
        .at(
            "/api/oauth2/v2/webhooks",
            get(webhook_api::list_webhooks).post(webhook_api::create_webhook),
        )
        .at(
            "/api/oauth2/v2/webhooks/:id",
            patch(webhook_api::update_webhook),
        )
        .at("/__mock/users", get(admin::list_users))
        .at(
            "/__mock/users/:id",
            put(admin::put_user).delete(admin::delete_user),
        )
        .at(
            "/__mock/users/:id/expire-tokens",
            post(admin::expire_tokens),
        )
        .at("/__mock/users/:id/revoke", post(admin::revoke))
        .at(
            "/__mock/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .at("/__mock/stats", get(admin::stats))
        .at("/__mock/reset-stats", post(admin::reset_stats))
        .data(shared)
        .around(log_request)
}

impl MockPatreon {
    /// Bind 127.0.0.1:`config.port` and serve on a background task.
    pub async fn start(config: MockConfig) -> anyhow::Result<MockPatreon> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), config).await
    }

    /// As [`MockPatreon::start`], on `ip` (`0.0.0.0` inside a container).
    pub async fn start_on(ip: std::net::IpAddr, config: MockConfig) -> anyhow::Result<MockPatreon> {
        let acceptor = TcpListener::bind((ip, config.port))
            .into_acceptor()
            .await
            .with_context(|| format!("binding {ip}:{}", config.port))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no socket address")?;
        let seed = config
            .seed_demo_users
            .then(|| demo_users(&config.campaign_id));
        let shared = Arc::new(Shared::new(config, format!("http://{addr}"))?);
        shared.upsert_users(seed.into_iter().flatten());
        let (stop, stopped) = oneshot::channel::<()>();
        let endpoint = app(shared.clone());
        let task = tokio::spawn(async move {
            let signal = async {
                let _ = stopped.await;
            };
            let server = Server::new_with_acceptor(acceptor);
            if let Err(err) = server
                .run_with_graceful_shutdown(endpoint, signal, Some(Duration::from_secs(1)))
                .await
            {
                tracing::error!(%err, "patreon-mock server stopped");
            }
        });
        Ok(MockPatreon {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`: base for both the OAuth and the API URLs.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Insert or replace a user; registered webhooks hear of a change to their membership.
    pub fn upsert_user(&self, user: MockUser) {
        self.shared.upsert_users([user]);
    }

    /// Insert many users under one lock (benchmarks).
    pub fn upsert_users(&self, users: impl IntoIterator<Item = MockUser>) {
        self.shared.upsert_users(users);
    }

    /// Remove a user and revoke their tokens; webhooks hear of a membership ended.
    pub fn remove_user(&self, id: &str) -> bool {
        self.shared.remove_user(id)
    }

    pub fn user(&self, id: &str) -> Option<MockUser> {
        self.shared.lock().users.get(id).cloned()
    }

    /// Replace (or with `None` remove) the user's membership to `campaign_id`.
    /// Webhooks hear of the change when `campaign_id` is the mock's campaign.
    pub fn set_membership(&self, user_id: &str, campaign_id: &str, m: Option<MockMembership>) {
        self.shared.modify_user(user_id, |user| {
            user.memberships.retain(|x| x.campaign_id != campaign_id);
            if let Some(mut m) = m {
                m.campaign_id = campaign_id.to_string();
                user.memberships.push(m);
            }
        });
    }

    /// Registered webhooks, oldest first, with their secrets and queued event counts.
    pub fn webhooks(&self) -> Vec<MockWebhook> {
        self.shared.lock().webhooks.list()
    }

    /// Registers a webhook as `POST /api/oauth2/v2/webhooks` would (no checks on `uri`).
    pub fn register_webhook(&self, uri: &str, triggers: &[&str]) -> MockWebhook {
        let triggers = triggers.iter().map(|t| t.to_string()).collect();
        self.shared
            .lock()
            .webhooks
            .register(uri.to_string(), triggers)
    }

    pub fn set_faults(&self, faults: Faults) {
        faults::set_faults(&self.shared, faults);
    }

    pub fn stats(&self) -> MockStats {
        self.shared.lock().stats.clone()
    }

    pub fn reset_stats(&self) {
        self.shared.lock().stats = MockStats::default();
    }

    /// The user's existing access tokens now get 401 (refresh still works).
    pub fn expire_access_tokens(&self, user_id: &str) {
        self.shared.lock().expire_access_tokens(user_id);
    }

    /// The user revoked the app: access tokens get 401, refresh gets `invalid_grant`.
    pub fn revoke_app(&self, user_id: &str) {
        self.shared.lock().revoke_app(user_id);
    }

    /// Stop the server and wait for it (at most ~1 s for open connections).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for MockPatreon {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
