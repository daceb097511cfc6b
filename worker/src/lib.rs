//! The worker: runs background jobs from the queue (Redis, or the embedded SQLite queue).

pub mod admin_commands;
pub mod cli;
pub mod commands;
pub mod data_rights_commands;
pub mod http;
pub mod import_command;
pub mod jobs;
pub mod manual_sweep;
pub mod poll;
pub mod ran;
pub mod reconciler;
pub mod refresh;
pub mod startup;
pub mod sweeper;
pub mod verify;
pub mod webhook;
pub mod webhook_commands;
pub mod webhook_watch;

use std::sync::Arc;

use domain::{
    infra::config::Settings,
    members::verification::{REFRESH_AHEAD, Verifier},
    patreon::PatreonClient,
    work::jobs::JobQueue,
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

    /// A sweep's checks also keep tokens alive until the next sweep: a token that would expire
    /// before the next scheduled tick plus a week is refreshed now (docs/patreon-api.md §3).
    pub fn sweep_verifier(&self) -> Verifier<'_> {
        Verifier {
            refresh_within: self.token_horizon(),
            ..self.verifier()
        }
    }

    /// How far ahead tokens are kept alive: until the next scheduled sweep plus a week.
    pub fn token_horizon(&self) -> chrono::Duration {
        let now = chrono::Utc::now();
        let next = self.settings.verify_schedule.next_after(now).unwrap_or(now);
        (next - now) + chrono::Duration::days(7)
    }
}
