//! Database connection: PostgreSQL in production, a SQLite file as the embedded default.

use std::time::Duration;

use migration::MigratorTrait;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

mod schema;
pub use schema::{SchemaState, schema_state};

/// Used when `DATABASE_URL` is unset; `mode=rwc` creates the file on first start.
pub const DEFAULT_SQLITE_URL: &str = "sqlite://./data/patreon-gate.db?mode=rwc";

/// Opens a pool of at most `max_connections`. For SQLite the parent directory is created, and WAL
/// mode lets readers run alongside the writer.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        create_sqlite_parent_dir(url);
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections.max(1))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // Statement logging would print bound values; slow statements are still reported.
        .sqlx_logging(false);
    if is_sqlite {
        options.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    }
    Database::connect(options).await
}

/// Opens a transaction that will write: the one way domain code starts one. On SQLite it takes
/// the write lock at `BEGIN` (`BEGIN IMMEDIATE`), queueing on the busy timeout behind any other
/// writer, in this process or another (api and worker share the file). A deferred transaction
/// that reads first cannot wait when it comes to write: it fails at once with `database is
/// locked` (`SQLITE_BUSY`, or `SQLITE_BUSY_SNAPSHOT` when a writer committed since its read).
/// PostgreSQL ignores the mode. Single statements outside a transaction wait on their own.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

pub(crate) fn create_sqlite_parent_dir(url: &str) {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        // Connecting reports a clear error if this fails, so the result can be ignored here.
        let _ = std::fs::create_dir_all(parent);
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_lock_tests;
