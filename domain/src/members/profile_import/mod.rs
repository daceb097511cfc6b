//! Importing members from the old app's profile table (`worker import-profiles`).
//!
//! Rows are read from the source a batch at a time, ordered by id; each batch is validated and
//! written to `users` in one transaction, keyed by Patreon id, so a run stopped half-way leaves
//! whole batches and running again finishes the job. Importing the same rows again changes
//! nothing.
//!
//! Imported members are unverified: `last_checked` stays unset and their old paid flag counts
//! only for `STALE_AFTER_DAYS` from their first import (`members::is_paid_member`). They have
//! no Patreon token, so a sweep records them as needing to sign in, and their first sign-in
//! settles their real status. A row whose email is malformed is imported without it (and
//! reported): the email is a convenience, the Patreon id is what matters. A member Patreon has already vouched for (checked, or holding
//! tokens) is never touched: their profile and membership came from Patreon, and Patreon's next
//! check would overwrite anything filled in from the old app anyway. The old team flag is stored
//! (`imported_team`) for admins to see and grants nothing.

mod batch;
mod profile;
mod report;
mod schema;
mod source;

use chrono::{DateTime, Utc};
use migration::MigratorTrait;
use sea_orm::DatabaseConnection;

pub use profile::{EmailDropped, Profile, SkipReason};
pub use report::{ImportReport, Skipped};
pub use schema::{PAID_SPELLINGS, ProfileColumns, ResolvedColumns, TEAM_SPELLINGS};
pub use source::{ProfileSource, SourceRow};

/// Source rows per batch (and per transaction).
pub const DEFAULT_BATCH_SIZE: u64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{flag} {name:?} is not a plain SQL identifier (letters, digits, _; at most 63)")]
    InvalidName { flag: &'static str, name: String },
    #[error("the source database has no table {0:?}")]
    NoSuchTable(String),
    #[error("table {table:?} has no column {columns}")]
    NoSuchColumns { table: String, columns: String },
    #[error("column {column:?} ({flag}) is {declared}, not boolean")]
    NotBoolean {
        flag: &'static str,
        column: String,
        declared: String,
    },
    #[error("column {column:?} holds a value that is not {expected}")]
    UnexpectedValue {
        column: String,
        expected: &'static str,
    },
    #[error("the source must be a PostgreSQL or SQLite database")]
    UnsupportedSource,
    #[error(
        "the target database has migrations to apply first (start the api once, or run the migration crate's `up`)"
    )]
    TargetNotMigrated,
    #[error("reading the source database failed")]
    Source(#[source] sea_orm::DbErr),
    #[error("writing the target database failed")]
    Target(#[source] sea_orm::DbErr),
}

/// Fails unless every migration is applied to `target` (the import writes new columns).
pub async fn check_target(target: &DatabaseConnection) -> Result<(), ImportError> {
    let pending = migration::Migrator::get_pending_migrations(target)
        .await
        .map_err(ImportError::Target)?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(ImportError::TargetNotMigrated)
    }
}

/// Imports every row of `source` into `target` (nothing written when `dry_run`), calling
/// `progress` with the number of rows read so far after each batch.
pub async fn import_profiles(
    source: &mut ProfileSource<'_>,
    target: &DatabaseConnection,
    dry_run: bool,
    batch_size: u64,
    now: DateTime<Utc>,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport {
        table: source.table().to_owned(),
        columns: source.columns().used(),
        dry_run,
        ..ImportReport::default()
    };
    for _ in 0..source.count_rows_without_id().await? {
        report.rows_read += 1;
        report.skip(None, SkipReason::MissingId);
    }
    loop {
        let rows = source.next_batch(batch_size.max(1)).await?;
        if rows.is_empty() {
            break;
        }
        batch::import_batch(target, &rows, dry_run, now, &mut report)
            .await
            .map_err(ImportError::Target)?;
        progress(report.rows_read);
    }
    tracing::info!(
        table = %report.table,
        dry_run,
        rows = report.rows_read,
        created = report.created,
        updated = report.updated,
        unchanged = report.unchanged,
        skipped = report.skipped_total(),
        without_email = report.emails_dropped_total(),
        "profiles imported"
    );
    Ok(report)
}
