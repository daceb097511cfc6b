//! The api's integration tests: one binary, a real api on port 0 per test, a fresh SQLite file or
//! PostgreSQL database per test, and the Patreon mock over real HTTP.
//!
//! PostgreSQL variants run when `TEST_POSTGRES_URL` is set (CI sets it); without it they say so
//! and pass, unless `REQUIRE_POSTGRES=1`, which makes a missing database a failure.

mod helpers;

mod admin;
mod admin_members;
mod admin_page;
mod cache;
mod compat;
mod data_rights;
mod jobs;
mod jwt_attacks;
mod logs;
mod metrics;
mod openapi;
mod queue;
mod redis;
mod session;
mod sign_in;
mod sign_in_failures;
mod startup;
mod storage;
mod surface;
mod webhooks;
