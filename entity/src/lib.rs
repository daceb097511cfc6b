//! Database entities. Plain data: behaviour lives in the `domain` crate.

// sea-orm's generated code opens transactions of its own; the workspace's ban on beginning
// them directly (clippy.toml: use `domain::infra::db::begin_write`) is for our code.
#![allow(clippy::disallowed_methods)]

pub mod handoff_code;
pub mod ids;
pub mod job_lease;
pub mod job_request;
pub mod membership_check;
pub mod oauth_state;
pub mod queue_client;
pub mod session;
pub mod states;
pub mod sweep;
pub mod sweep_item;
pub mod user;
pub mod webhook_event;

pub use ids::{JobRequestId, PatreonUserId, SweepId, UserId, WebhookEventId};
