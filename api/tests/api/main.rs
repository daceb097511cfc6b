//! The api's integration tests: one binary, a real api on port 0 per test, a fresh SQLite file or
//! PostgreSQL database per test, and the Patreon mock over real HTTP.
//!
//! PostgreSQL variants run when `TEST_POSTGRES_URL` is set and Redis tests when `TEST_REDIS_URL`
//! is (CI sets both); without them those tests are listed as ignored, with the variable to set.
//!
//! `T01`–`T40` and `C1`–`C3` in the suites' comments are the tests of docs/security-checklist.md
//! §10 and §9.

mod helpers;

mod admin;
mod admin_guard;
mod admin_members;
mod admin_page;
mod cache;
mod client_address;
mod compat;
mod contention;
mod data_rights;
mod jobs;
mod jwt_attacks;
mod logs;
mod metrics;
mod openapi;
mod queue;
mod redis;
mod refresh_tokens;
mod session;
mod sign_in;
mod sign_in_failures;
mod startup;
mod storage;
mod surface;
mod webhook_replays;
mod webhooks;

/// `REQUIRE_POSTGRES=1` / `REQUIRE_REDIS=1` (set by `.ci/run`) turn the ignored tests into a failure.
#[test]
fn required_test_servers_are_configured() {
    test_support::assert_required_servers(cfg!(postgres_tests), cfg!(redis_tests));
}
