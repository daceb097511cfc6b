//! Infrastructure: configuration, the database and Redis connections, encryption at rest,
//! random secrets, logging and metrics.

pub mod config;
pub mod crypto;
pub mod db;
pub(crate) mod db_retry;
pub mod metrics;
pub mod redis;
pub mod secrets;
pub mod telemetry;
