//! Tells every api process that a session or a user changed, so caches of "who is this token"
//! drop the entry at once. On PostgreSQL this is `NOTIFY`, delivered when the surrounding
//! transaction commits. On SQLite it reaches this process only (the demo runs api and worker in
//! one), just before the commit; other processes rely on the cache's short TTL.

use std::sync::LazyLock;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tokio::sync::broadcast;

use crate::Result;

pub const CHANNEL: &str = "patreon_gate_auth";

/// What changed, as carried in a notification payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthEvent {
    Session(String),
    User(i64),
}

impl AuthEvent {
    pub fn payload(&self) -> String {
        match self {
            Self::Session(id) => format!("s:{id}"),
            Self::User(id) => format!("u:{id}"),
        }
    }

    pub fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(':')? {
            ("s", id) => Some(Self::Session(id.to_owned())),
            ("u", id) => id.parse().ok().map(Self::User),
            _ => None,
        }
    }
}

static IN_PROCESS: LazyLock<broadcast::Sender<AuthEvent>> =
    LazyLock::new(|| broadcast::channel(1024).0);

/// Events published by this process on a database without `NOTIFY`.
pub fn subscribe_in_process() -> broadcast::Receiver<AuthEvent> {
    IN_PROCESS.subscribe()
}

pub async fn publish(db: &impl ConnectionTrait, event: AuthEvent) -> Result<()> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let stmt = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), event.payload().into()],
        );
        db.execute_raw(stmt).await?;
    } else {
        // No listener is an error only for the channel, not for us.
        let _ = IN_PROCESS.send(event);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_ignored() {
        for event in [AuthEvent::Session("ab12".into()), AuthEvent::User(42)] {
            assert_eq!(AuthEvent::parse(&event.payload()), Some(event));
        }
        for junk in ["", "x:1", "u:abc", "s"] {
            assert_eq!(AuthEvent::parse(junk), None);
        }
    }
}
