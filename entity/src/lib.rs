//! Database entities. Plain data: behaviour lives in the `domain` crate.

pub mod handoff_code;
pub mod job_lease;
pub mod job_request;
pub mod membership_check;
pub mod oauth_state;
pub mod queue_client;
pub mod session;
pub mod sweep;
pub mod sweep_item;
pub mod user;
pub mod webhook_event;
