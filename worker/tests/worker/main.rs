//! The worker's tests: sweeps end to end on a fresh database and queue per test, with the
//! Patreon mock over HTTP.

mod admin_commands;
mod data_rights;
mod failures;
mod helpers;
mod import_profiles;
mod jobs;
mod postgres_restart;
mod queue;
mod schema;
mod sweeps;
mod webhook_commands;
mod webhooks;
