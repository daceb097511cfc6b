//! A short-lived, per-process cache of live sessions and their users, so `/api/auth/me` and
//! every authenticated call do not hit the database each time.
//!
//! Correctness comes from invalidation, not from the TTL: this process drops an entry before it
//! answers a logout, and every change to a session or user published with
//! `domain::auth::auth_events` (PostgreSQL `NOTIFY`, sent by any api or worker process at commit; on
//! SQLite the `auth_changes` log, polled every [`CHANGE_LOG_POLL`]) drops it in every api
//! process. The TTL (`AUTH_CACHE_TTL_MS`) bounds staleness when neither can be read.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dashmap::DashMap;
use domain::auth::auth_events::{AuthEvent, CHANNEL, ChangeLog, Changes};
use entity::{session, user};
use sea_orm::DatabaseConnection;

/// Entries beyond this are not added (a flood of distinct sessions must not grow memory).
const MAX_ENTRIES: usize = 100_000;
/// How often an api process on SQLite reads the change log: a change made by another process
/// (the worker) shows within this, not when the entry expires.
pub const CHANGE_LOG_POLL: Duration = Duration::from_millis(100);

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
        let live = domain::auth::sessions::is_live(&entry.session, now);
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
        return follow_change_log(db, cache).await;
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

/// Without `NOTIFY` (SQLite): polls the `auth_changes` log that every process (this one's
/// in-process worker too) writes with its changes.
async fn follow_change_log(db: DatabaseConnection, cache: std::sync::Arc<AuthCache>) {
    let mut log = LogReader::default();
    let mut poll = tokio::time::interval(CHANGE_LOG_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        poll.tick().await;
        log.follow(&db, &cache).await;
    }
}

#[derive(Default)]
struct LogReader {
    reader: Option<ChangeLog>,
    failing: bool,
}

impl LogReader {
    /// Applies what the log says changed; when it cannot be read, nothing cached is trusted.
    async fn follow(&mut self, db: &DatabaseConnection, cache: &AuthCache) {
        let read = match &mut self.reader {
            Some(reader) => reader.read(db).await,
            None => ChangeLog::from_now(db).await.map(|reader| {
                self.reader = Some(reader);
                Changes::Missed // whatever was cached before the reader started
            }),
        };
        let failed = read.is_err();
        match read {
            Ok(Changes::Events(events)) => events.iter().for_each(|e| cache.forget(e)),
            Ok(Changes::Missed) => cache.clear(),
            Err(e) => {
                if !self.failing {
                    tracing::warn!(error = %e, "cannot read the auth change log");
                }
                cache.clear();
            }
        }
        self.failing = failed;
    }
}
