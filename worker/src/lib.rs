//! The worker: runs background jobs from the queue (Redis, or the embedded SQLite queue).

pub mod commands;
pub mod startup;
pub mod sweeper;
pub mod verify;

use std::sync::Arc;

use domain::{
    config::Settings,
    jobs::JobQueue,
    patreon::PatreonClient,
    verification::{REFRESH_AHEAD, Verifier},
};
use sea_orm::DatabaseConnection;

/// What every job handler gets.
#[derive(Clone)]
pub struct WorkerCtx {
    pub db: DatabaseConnection,
    /// Where retries are pushed.
    pub queue: JobQueue,
    pub patreon: PatreonClient,
    pub settings: Arc<Settings>,
}

impl WorkerCtx {
    pub fn verifier(&self) -> Verifier<'_> {
        Verifier {
            patreon: &self.patreon,
            cipher: &self.settings.token_cipher,
            policy: &self.settings.membership,
            refresh_within: REFRESH_AHEAD,
        }
    }
}
