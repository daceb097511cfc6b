//! The worker: runs background jobs from the queue (Redis, or the embedded SQLite queue).

pub mod startup;
pub mod verify;

use std::sync::Arc;

use domain::{config::Settings, patreon::PatreonClient};
use sea_orm::DatabaseConnection;

/// What every job handler gets.
#[derive(Clone)]
pub struct WorkerCtx {
    pub db: DatabaseConnection,
    pub patreon: PatreonClient,
    pub settings: Arc<Settings>,
}
