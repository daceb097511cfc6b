//! The budget counted in the database, for the deployment without Redis: the api, `worker run`
//! and `worker sweep --now` share one budget through the SQLite file or PostgreSQL. Every call
//! taken is a row (`patreon_budget_calls`), inserted only while the window has room by a single
//! statement; a 429's pause is one row (`patreon_budget_pauses`). Times are the database's
//! clock, so processes agree; rows older than any window are purged now and then.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, Statement, Value};

use super::Quota;

/// The database's clock in milliseconds since the epoch, as a one-row table `n(ms)`.
const SQLITE_NOW: &str =
    "(SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) AS ms) AS n";
const POSTGRES_NOW: &str =
    "(SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms) AS n";

/// Inserts the call if fewer than the limit fall in the window and no pause holds. Braced names
/// are placeholders, bound in order; `{now}` and `{greatest}` are per-backend SQL.
const TAKE: &str = "INSERT INTO patreon_budget_calls (budget_key, at_ms) \
     SELECT {key}, n.ms FROM {now} \
     WHERE (SELECT COUNT(*) FROM patreon_budget_calls c \
            WHERE c.budget_key = {key2} AND c.at_ms > n.ms - {window}) < {limit} \
       AND NOT EXISTS (SELECT 1 FROM patreon_budget_pauses p WHERE p.until_ms > n.ms)";

/// What a taker that found no room waits for.
const ROOM: &str = "SELECT n.ms AS now_ms, \
       (SELECT COUNT(*) FROM patreon_budget_calls c \
        WHERE c.budget_key = {key} AND c.at_ms > n.ms - {window}) AS taken, \
       (SELECT MIN(c.at_ms) FROM patreon_budget_calls c \
        WHERE c.budget_key = {key2} AND c.at_ms > n.ms - {window2}) AS oldest_ms, \
       (SELECT MAX(p.until_ms) FROM patreon_budget_pauses p) AS paused_until_ms \
     FROM {now}";

/// Pauses every call until now + the bound ms, unless a later pause already holds.
const PAUSE: &str = "INSERT INTO patreon_budget_pauses (budget_key, until_ms) \
     SELECT 'client', n.ms + {ms} FROM {now} WHERE true \
     ON CONFLICT (budget_key) DO UPDATE SET until_ms = \
       {greatest}(patreon_budget_pauses.until_ms, excluded.until_ms)";

/// Calls older than this are no window's any more (the longest window is about a minute).
const PURGE_OLDER_THAN_MS: i64 = 120_000;
const PURGE_EVERY: Duration = Duration::from_secs(30);
/// The class of our PostgreSQL advisory locks (the other half is the budget key's hash).
const LOCK_CLASS: i32 = 0x5042;

pub(super) struct DatabaseBudget {
    db: DatabaseConnection,
    last_purge: Mutex<Instant>,
}

impl DatabaseBudget {
    pub(super) fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            last_purge: Mutex::new(Instant::now()),
        }
    }

    fn statement(&self, template: &str, values: Vec<Value>) -> Statement {
        let backend = self.db.get_database_backend();
        let postgres = backend == DatabaseBackend::Postgres;
        let mut sql = template
            .replace("{now}", if postgres { POSTGRES_NOW } else { SQLITE_NOW })
            .replace("{greatest}", if postgres { "GREATEST" } else { "MAX" });
        // Placeholders in order: `$1, $2…` on PostgreSQL, `?` on SQLite.
        let mut n = 0;
        while let Some(start) = sql.find('{') {
            let end = start + sql[start..].find('}').unwrap_or(0);
            n += 1;
            let mark = if postgres {
                format!("${n}")
            } else {
                "?".to_owned()
            };
            sql.replace_range(start..=end, &mark);
        }
        Statement::from_sql_and_values(backend, sql, values)
    }

    /// Zero when a slot was taken, else how long to wait before trying again.
    pub(super) async fn try_take(&self, key: &str, quota: Quota) -> Result<Duration, DbErr> {
        let window = quota.window_ms();
        let take = self.statement(
            TAKE,
            vec![
                key.into(),
                key.into(),
                window.into(),
                i64::from(quota.limit).into(),
            ],
        );
        let taken = if self.db.get_database_backend() == DatabaseBackend::Postgres {
            // One taker per key at a time, so the count sees every slot taken before it. SQLite
            // needs no lock: a writing statement holds the database's write lock throughout.
            let txn = crate::infra::db::begin_write(&self.db).await?;
            let lock = Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                [LOCK_CLASS.into(), key.into()],
            );
            txn.execute_raw(lock).await?;
            let taken = txn.execute_raw(take).await?.rows_affected();
            txn.commit().await?;
            taken
        } else {
            self.db.execute_raw(take).await?.rows_affected()
        };
        if taken == 1 {
            self.purge_now_and_then().await;
            return Ok(Duration::ZERO);
        }
        self.wait(key, quota).await
    }

    async fn wait(&self, key: &str, quota: Quota) -> Result<Duration, DbErr> {
        let window = quota.window_ms();
        let room = self.statement(
            ROOM,
            vec![key.into(), window.into(), key.into(), window.into()],
        );
        let Some(row) = self.db.query_one_raw(room).await? else {
            return Ok(Duration::from_millis(1));
        };
        let now: i64 = row.try_get("", "now_ms")?;
        let taken: i64 = row.try_get("", "taken")?;
        let oldest: Option<i64> = row.try_get("", "oldest_ms")?;
        let paused_until: Option<i64> = row.try_get("", "paused_until_ms")?;
        let paused = paused_until.map_or(0, |until| until - now);
        let full = match oldest {
            Some(oldest) if taken >= i64::from(quota.limit) => oldest + window - now,
            _ => 0,
        };
        let wait_ms = paused.max(full).max(1);
        Ok(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(1)))
    }

    pub(super) async fn pause(&self, how_long: Duration) -> Result<(), DbErr> {
        let ms = i64::try_from(how_long.as_millis()).unwrap_or(i64::MAX / 2);
        self.db
            .execute_raw(self.statement(PAUSE, vec![ms.into()]))
            .await?;
        Ok(())
    }

    /// Deletes calls no window counts any more, at most every [`PURGE_EVERY`] per process.
    async fn purge_now_and_then(&self) {
        {
            let mut last = self.last_purge.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < PURGE_EVERY {
                return;
            }
            *last = Instant::now();
        }
        let purge = self.statement(
            "DELETE FROM patreon_budget_calls WHERE at_ms < \
             (SELECT n.ms FROM {now}) - {older_than}",
            vec![PURGE_OLDER_THAN_MS.into()],
        );
        if let Err(e) = self.db.execute_raw(purge).await {
            tracing::debug!(error = %e, "cannot purge old Patreon budget rows; next time");
        }
    }
}
