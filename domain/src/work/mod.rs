//! Work the service owes: the record of it ([`ledger`]: rechecks, sweep items and webhook
//! deliveries, their states and the one way to record and push a piece of work), the jobs and
//! their queue, sweeps, webhook deliveries, leases, schedules and retention.

pub mod check_job;
pub mod dead_letters;
pub mod jobs;
pub mod leases;
pub mod ledger;
pub mod queue_identity;
pub mod queue_trim;
pub mod retention;
pub mod schedule;
pub mod sweeps;
pub mod webhooks;
