//! Domain logic shared by the api and the worker: configuration, storage use cases, the Patreon
//! client and the membership rule. No HTTP server and no queue wiring here.

pub mod admins;
pub mod auth_events;
pub mod config;
pub mod crypto;
pub mod data_rights;
pub mod db;
mod db_retry;
pub mod dead_letters;
mod error;
pub mod job_requests;
pub mod jobs;
pub mod jwt;
pub mod key_rotation;
pub mod leases;
pub mod members;
pub mod membership;
pub mod membership_checks;
pub mod metrics;
pub mod patreon;
pub mod patreon_tokens;
pub mod profile_import;
pub mod queue_identity;
pub mod queue_trim;
pub mod redis;
pub mod retention;
pub mod schedule;
pub mod secrets;
pub mod sessions;
pub mod sign_in;
pub mod sweeps;
pub mod telemetry;
pub mod users;
pub mod verification;
pub mod webhooks;

pub use error::{Error, Result};

#[cfg(test)]
mod test_servers {
    /// `REQUIRE_POSTGRES=1` / `REQUIRE_REDIS=1` turn the ignored tests into a failure.
    #[test]
    fn required_test_servers_are_configured() {
        test_support::assert_required_servers(cfg!(postgres_tests), cfg!(redis_tests));
    }
}
