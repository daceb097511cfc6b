//! Tells every api process that a session or a user changed, so caches of "who is this token"
//! drop the entry at once. On PostgreSQL this is `NOTIFY`, delivered when the surrounding
//! transaction commits. SQLite has no `NOTIFY`: the event is written to the `auth_changes` log in
//! the same transaction, and every api process (the demo's in-process worker's too) polls the
//! log ([`ChangeLog`]), so it drops the entry just after the change commits.

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement, Value};

use crate::Result;
use crate::UserId;

pub const CHANNEL: &str = "patreon_gate_auth";

/// What changed, as carried in a notification payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthEvent {
    Session(String),
    User(UserId),
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
            ("u", id) => id.parse().ok().map(UserId).map(Self::User),
            _ => None,
        }
    }
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
        log_change(db, &event).await?;
    }
    Ok(())
}

/// Rows of `auth_changes` kept: a reader further behind than this clears its whole cache.
const LOG_KEPT: i64 = 10_000;
/// The log is trimmed on every this many writes, not on each.
const TRIM_EVERY: i64 = 1_000;

async fn log_change(db: &impl ConnectionTrait, event: &AuthEvent) -> Result<()> {
    let backend = db.get_database_backend();
    let insert = Statement::from_sql_and_values(
        backend,
        "INSERT INTO auth_changes (payload) VALUES (?) RETURNING id",
        [event.payload().into()],
    );
    let id: i64 = match db.query_one_raw(insert).await? {
        Some(row) => row.try_get("", "id")?,
        None => return Ok(()),
    };
    if id % TRIM_EVERY == 0 {
        let trim = Statement::from_sql_and_values(
            backend,
            "DELETE FROM auth_changes WHERE id <= ?",
            [Value::from(id - LOG_KEPT)],
        );
        db.execute_raw(trim).await?;
    }
    Ok(())
}

/// What the `auth_changes` log says happened since a reader last looked.
#[derive(Debug, PartialEq, Eq)]
pub enum Changes {
    /// These, in order (possibly none).
    Events(Vec<AuthEvent>),
    /// The reader fell behind the trimmed log: anything may have changed.
    Missed,
}

/// A reader of the `auth_changes` log (SQLite), from where it last looked.
pub struct ChangeLog {
    last_id: i64,
}

impl ChangeLog {
    /// Rows read per call; a longer backlog is read on the next calls.
    const PAGE: i64 = 1_000;

    /// A reader that starts after the latest change logged so far.
    pub async fn from_now(db: &impl ConnectionTrait) -> Result<Self> {
        let stmt = Statement::from_string(
            db.get_database_backend(),
            "SELECT COALESCE(MAX(id), 0) AS id FROM auth_changes",
        );
        let last_id = match db.query_one_raw(stmt).await? {
            Some(row) => row.try_get("", "id")?,
            None => 0,
        };
        Ok(Self { last_id })
    }

    /// The changes logged since the last call.
    pub async fn read(&mut self, db: &impl ConnectionTrait) -> Result<Changes> {
        let stmt = Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT id, payload FROM auth_changes WHERE id > ? ORDER BY id LIMIT ?",
            [Value::from(self.last_id), Value::from(Self::PAGE)],
        );
        let rows = db.query_all_raw(stmt).await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut missed = false;
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let payload: String = row.try_get("", "payload")?;
            // Ids are consecutive (SQLite commits one writer at a time), so a gap is a trim.
            missed |= id != self.last_id + 1;
            self.last_id = id;
            events.extend(AuthEvent::parse(&payload));
        }
        Ok(if missed {
            Changes::Missed
        } else {
            Changes::Events(events)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{Backend, TestDb};

    #[tokio::test]
    async fn a_reader_sees_each_change_once_in_order_and_knows_when_it_fell_behind() {
        let test_db = TestDb::create(Backend::Sqlite).await;
        let db = crate::infra::db::connect(&test_db.url, 2).await.unwrap();
        crate::infra::db::migrate(&db).await.unwrap();
        publish(&db, AuthEvent::User(UserId(1))).await.unwrap();
        let mut reader = ChangeLog::from_now(&db).await.unwrap();
        assert_eq!(reader.read(&db).await.unwrap(), Changes::Events(vec![]));

        let events = [
            AuthEvent::Session("ab12".into()),
            AuthEvent::User(UserId(7)),
        ];
        for event in events.clone() {
            publish(&db, event).await.unwrap();
        }
        assert_eq!(
            reader.read(&db).await.unwrap(),
            Changes::Events(events.to_vec())
        );
        assert_eq!(reader.read(&db).await.unwrap(), Changes::Events(vec![]));

        // Trimmed before this reader got to it.
        publish(&db, AuthEvent::User(UserId(8))).await.unwrap();
        db.execute_unprepared("DELETE FROM auth_changes")
            .await
            .unwrap();
        publish(&db, AuthEvent::User(UserId(9))).await.unwrap();
        assert_eq!(reader.read(&db).await.unwrap(), Changes::Missed);
        assert_eq!(reader.read(&db).await.unwrap(), Changes::Events(vec![]));
    }

    #[test]
    fn payloads_round_trip_and_garbage_is_ignored() {
        for event in [
            AuthEvent::Session("ab12".into()),
            AuthEvent::User(UserId(42)),
        ] {
            assert_eq!(AuthEvent::parse(&event.payload()), Some(event));
        }
        for junk in ["", "x:1", "u:abc", "s"] {
            assert_eq!(AuthEvent::parse(junk), None);
        }
    }
}
