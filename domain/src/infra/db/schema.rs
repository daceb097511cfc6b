//! Whether the database's schema is the one this build was written for. The api migrates at
//! start (`AUTO_MIGRATE`); the worker and its commands only look, and say what to do.

use std::collections::BTreeSet;

use migration::{Migrator, MigratorTrait, SchemaManager, seaql_migrations};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait};

/// How the database's applied migrations compare with this build's.
#[derive(Debug, PartialEq, Eq)]
pub enum SchemaState {
    Current,
    /// These migrations of this build are not applied yet (oldest first).
    Behind(Vec<String>),
    /// A newer release applied these, which this build does not know. Migrations only add, so
    /// an older binary still works during a staged upgrade or a rollback of binaries.
    Ahead(Vec<String>),
}

impl SchemaState {
    /// What an operator should do about a schema that is behind; `None` otherwise.
    pub fn advice(&self) -> Option<String> {
        let SchemaState::Behind(pending) = self else {
            return None;
        };
        Some(format!(
            "the database is missing {} migration(s) this release needs (first: {}): start the \
             api once (it migrates at start unless AUTO_MIGRATE=false) or run `migration up`",
            pending.len(),
            pending.first().map_or("", String::as_str),
        ))
    }
}

/// Reads the applied migrations without creating anything.
pub async fn schema_state(db: &DatabaseConnection) -> Result<SchemaState, DbErr> {
    let table = Migrator::migration_table_name().to_string();
    let applied: BTreeSet<String> = if SchemaManager::new(db).has_table(&table).await? {
        seaql_migrations::Entity::find()
            .all(db)
            .await?
            .into_iter()
            .map(|m| m.version)
            .collect()
    } else {
        BTreeSet::new()
    };
    let known: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let pending: Vec<String> = known
        .iter()
        .filter(|name| !applied.contains(*name))
        .cloned()
        .collect();
    if !pending.is_empty() {
        return Ok(SchemaState::Behind(pending));
    }
    let unknown: Vec<String> = applied
        .into_iter()
        .filter(|name| !known.contains(name))
        .collect();
    Ok(if unknown.is_empty() {
        SchemaState::Current
    } else {
        SchemaState::Ahead(unknown)
    })
}
