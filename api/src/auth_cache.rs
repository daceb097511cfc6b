//! A short-lived, per-process cache of live sessions and their users, so `/api/auth/me` and
//! every authenticated call do not hit the database each time.
//!
//! Correctness comes from invalidation, not from the TTL: this process drops an entry before it
//! answers a logout, and every change to a session or user published with
//! `domain::auth_events` (PostgreSQL `NOTIFY`, sent by any api or worker process at commit)
//! drops it in every api process. The TTL (`AUTH_CACHE_TTL_MS`) bounds staleness when
//! notifications cannot arrive (SQLite, or while the listener reconnects).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use domain::auth_events::{AuthEvent, CHANNEL};
use entity::{session, user};
use sea_orm::DatabaseConnection;

/// Entries beyond this are not added (a flood of distinct sessions must not grow memory).
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    session: session::Model,
    user: user::Model,
    cached_at: Instant,
}

pub struct AuthCache {
    entries: DashMap<String, Entry>,
    ttl: Duration,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: DashMap::new(),
            ttl,
        }
    }

    /// The cached session and user, if fresh and still live at `now`.
    pub fn get(
        &self,
        session_id: &str,
        patreon_id: &str,
        now: DateTime<Utc>,
    ) -> Option<(session::Model, user::Model)> {
        let entry = self.entries.get(session_id)?;
        let fresh = entry.cached_at.elapsed() < self.ttl;
        let live = domain::sessions::is_live(&entry.session, now);
        if fresh && live && entry.user.patreon_id == patreon_id {
            return Some((entry.session.clone(), entry.user.clone()));
        }
        drop(entry);
        self.entries.remove(session_id);
        None
    }

    pub fn put(&self, session: &session::Model, user: &user::Model) {
        if self.ttl.is_zero() || self.entries.len() >= MAX_ENTRIES {
            return;
        }
        let entry = Entry {
            session: session.clone(),
            user: user.clone(),
            cached_at: Instant::now(),
        };
        self.entries.insert(session.id.clone(), entry);
    }

    pub fn forget(&self, event: &AuthEvent) {
        match event {
            AuthEvent::Session(id) => {
                self.entries.remove(id);
            }
            AuthEvent::User(user_id) => self.entries.retain(|_, e| e.user.id != *user_id),
        }
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    /// Drops expired entries; called periodically.
    pub fn purge_stale(&self) {
        self.entries.retain(|_, e| e.cached_at.elapsed() < self.ttl);
    }
}

/// Follows `NOTIFY` on PostgreSQL for the life of the process, reconnecting with backoff; while
/// disconnected the cache is emptied so nothing older than the outage is served.
pub async fn follow_notifications(db: DatabaseConnection, cache: std::sync::Arc<AuthCache>) {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return follow_in_process(cache).await;
    }
    let pool = db.get_postgres_connection_pool().clone();
    let mut backoff = Duration::from_millis(200);
    loop {
        match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    backoff = Duration::from_millis(200);
                    // Anything may have changed while we were not listening.
                    cache.clear();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => {
                                if let Some(event) = AuthEvent::parse(notification.payload()) {
                                    cache.forget(&event);
                                }
                            }
                            // The connection dropped (sqlx reconnects on the next call):
                            // notifications may have been missed meanwhile.
                            Ok(None) => cache.clear(),
                            Err(e) => {
                                tracing::warn!(error = %e, "auth notification listener failed");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for auth notifications"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect the auth notification listener"),
        }
        cache.clear();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Without `NOTIFY` (SQLite), follows the changes this process makes, e.g. its in-process worker.
async fn follow_in_process(cache: std::sync::Arc<AuthCache>) {
    let mut events = domain::auth_events::subscribe_in_process();
    loop {
        match events.recv().await {
            Ok(event) => cache.forget(&event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => cache.clear(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
