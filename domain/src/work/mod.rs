//! Work the service owes: the jobs and their queue, the database records of what is owed
//! (rechecks, sweeps, webhook deliveries), leases, schedules and retention.

pub mod dead_letters;
pub mod job_requests;
pub mod jobs;
pub mod leases;
pub mod queue_identity;
pub mod queue_trim;
pub mod retention;
pub mod schedule;
pub mod sweeps;
pub mod webhooks;
