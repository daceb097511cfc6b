//! Patreon's OAuth and API v2, as this service uses them.

mod client;
mod error;
pub mod resources;

pub use client::{PatreonClient, TokenGrant};
pub use error::PatreonError;
pub use resources::Identity;

#[cfg(test)]
mod client_tests;
