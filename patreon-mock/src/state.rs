//! Shared mutable state: users, codes, tokens, faults, counters.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::faults::{Faults, Limiter};
use crate::model::MockUser;
use crate::webhook_events::Event;
use crate::webhooks::Webhooks;
use crate::{MockConfig, MockStats};

/// Authorization codes live 10 minutes.
const CODE_TTL_SECS: i64 = 600;
/// The rate-limit "family" of the creator token.
pub(crate) const CREATOR_FAMILY: u64 = 0;

pub(crate) struct Shared {
    pub config: MockConfig,
    pub base_url: String,
    /// Sends webhooks.
    pub http: reqwest::Client,
    /// Where webhook deliveries run, so sync helpers (`MockPatreon::set_membership`) can start them.
    pub runtime: tokio::runtime::Handle,
    inner: Mutex<Inner>,
}

pub(crate) struct CodeGrant {
    pub user_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub expires_at: i64,
}

pub(crate) struct AccessGrant {
    pub user_id: String,
    pub scope: String,
    pub expires_at: i64,
    /// Tokens descending from one authorization share a family (and a rate-limit budget:
    /// refreshing does not reset it).
    pub family: u64,
}

pub(crate) struct RefreshGrant {
    pub user_id: String,
    pub scope: String,
    pub family: u64,
}

pub(crate) struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub scope: String,
}

/// Who a bearer token acts as.
pub(crate) enum Principal {
    User {
        user_id: String,
        scope: String,
        family: u64,
    },
    Creator,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub users: BTreeMap<String, MockUser>,
    pub codes: HashMap<String, CodeGrant>,
    pub access: HashMap<String, AccessGrant>,
    pub refresh: HashMap<String, RefreshGrant>,
    pub faults: Faults,
    pub limiter: Limiter,
    pub stats: MockStats,
    pub webhooks: Webhooks,
    next_family: u64,
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// 32 random bytes, hex: opaque tokens and codes.
pub(crate) fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl Shared {
    /// Must be called inside a Tokio runtime (webhook deliveries are spawned on it).
    pub fn new(config: MockConfig, base_url: String) -> anyhow::Result<Shared> {
        let http = reqwest::Client::builder()
            .user_agent("Patreon HTTP Robot (patreon-mock)")
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Shared {
            config,
            base_url,
            http,
            runtime: tokio::runtime::Handle::current(),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts or replaces users; a change to a membership of our campaign goes to webhooks.
    pub fn upsert_users(self: &Arc<Self>, users: impl IntoIterator<Item = MockUser>) {
        let mut events = Vec::new();
        {
            let mut inner = self.lock();
            for user in users {
                let id = user.id.clone();
                let before = inner.users.insert(id.clone(), user);
                events.extend(self.event(&inner, before.as_ref(), inner.users.get(&id)));
            }
        }
        self.publish(events);
    }

    /// Changes a user in place (no-op for an unknown id); returns whether they exist.
    pub fn modify_user(self: &Arc<Self>, id: &str, change: impl FnOnce(&mut MockUser)) -> bool {
        let event = {
            let mut inner = self.lock();
            let Some(user) = inner.users.get_mut(id) else {
                return false;
            };
            let before = user.clone();
            change(user);
            self.event(&inner, Some(&before), inner.users.get(id))
        };
        self.publish(event.into_iter().collect());
        true
    }

    /// Removes a user and everything they were granted; webhooks hear of an ended membership.
    pub fn remove_user(self: &Arc<Self>, id: &str) -> bool {
        let (removed, event) = {
            let mut inner = self.lock();
            let before = inner.users.get(id).cloned();
            let removed = inner.remove_user(id);
            (removed, self.event(&inner, before.as_ref(), None))
        };
        self.publish(event.into_iter().collect());
        removed
    }

    /// The webhook event for a user's change, only rendered when someone listens.
    fn event(
        &self,
        inner: &Inner,
        before: Option<&MockUser>,
        after: Option<&MockUser>,
    ) -> Option<Event> {
        if inner.webhooks.is_empty() {
            return None;
        }
        Event::for_change(&self.config.campaign_id, &self.base_url, before, after)
    }

    /// Resolve a bearer token (user token or the configured creator token).
    pub fn principal(&self, token: &str) -> Option<Principal> {
        if !token.is_empty() && self.config.creator_access_token.as_deref() == Some(token) {
            return Some(Principal::Creator);
        }
        let inner = self.lock();
        let grant = inner.access.get(token)?;
        (grant.expires_at > now()).then(|| Principal::User {
            user_id: grant.user_id.clone(),
            scope: grant.scope.clone(),
            family: grant.family,
        })
    }
}

impl Inner {
    pub fn issue_code(&mut self, user_id: &str, redirect_uri: &str, scope: &str) -> String {
        let now = now();
        if self.codes.len() > 1000 {
            self.codes.retain(|_, c| c.expires_at > now);
        }
        let code = random_token();
        self.codes.insert(
            code.clone(),
            CodeGrant {
                user_id: user_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                scope: scope.to_string(),
                expires_at: now + CODE_TTL_SECS,
            },
        );
        code
    }

    /// Consume a code (single use, even when the exchange then fails).
    pub fn take_code(&mut self, code: &str) -> Option<CodeGrant> {
        self.codes.remove(code).filter(|c| c.expires_at > now())
    }

    /// Consume a refresh token (strictly single use).
    pub fn take_refresh(&mut self, token: &str) -> Option<RefreshGrant> {
        self.refresh.remove(token)
    }

    pub fn new_family(&mut self) -> u64 {
        self.next_family += 1;
        self.next_family
    }

    pub fn issue_pair(&mut self, user_id: &str, scope: &str, family: u64, ttl: i64) -> TokenPair {
        let now = now();
        if self.access.len() > 50_000 {
            self.access.retain(|_, a| a.expires_at > now);
        }
        let access_token = random_token();
        let refresh_token = random_token();
        self.access.insert(
            access_token.clone(),
            AccessGrant {
                user_id: user_id.to_string(),
                scope: scope.to_string(),
                expires_at: now.saturating_add(ttl),
                family,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            RefreshGrant {
                user_id: user_id.to_string(),
                scope: scope.to_string(),
                family,
            },
        );
        TokenPair {
            access_token,
            refresh_token,
            scope: scope.to_string(),
        }
    }

    /// Existing access tokens of the user expire now (refresh tokens stay valid).
    pub fn expire_access_tokens(&mut self, user_id: &str) {
        let past = now() - 1;
        for grant in self.access.values_mut().filter(|a| a.user_id == user_id) {
            grant.expires_at = past;
        }
    }

    /// The user revoked the app: every token and pending code of theirs dies.
    pub fn revoke_app(&mut self, user_id: &str) {
        self.access.retain(|_, a| a.user_id != user_id);
        self.refresh.retain(|_, r| r.user_id != user_id);
        self.codes.retain(|_, c| c.user_id != user_id);
    }

    pub fn remove_user(&mut self, id: &str) -> bool {
        let removed = self.users.remove(id).is_some();
        if removed {
            self.revoke_app(id);
        }
        removed
    }
}
