//! The worker's tests: sweeps end to end on a fresh database and queue per test, with the
//! Patreon mock over HTTP. Tests that need PostgreSQL or Redis are listed as ignored when
//! `TEST_POSTGRES_URL` or `TEST_REDIS_URL` is unset.

mod admin_commands;
mod cli;
mod data_rights;
mod failures;
mod helpers;
mod import_profiles;
mod jobs;
mod metrics_access;
mod pickup;
mod postgres_restart;
mod pressure;
mod queue;
mod schema;
mod sweeps;
mod webhook_commands;
mod webhook_order;
mod webhooks;

/// `REQUIRE_POSTGRES=1` / `REQUIRE_REDIS=1` (set by `.ci/run`) turn the ignored tests into a failure.
#[test]
fn required_test_servers_are_configured() {
    test_support::assert_required_servers(cfg!(postgres_tests), cfg!(redis_tests));
}
