//! The HTTP api: transport only. Handlers extract, authenticate, call one `domain` function and
//! map the result; errors become HTTP in `error.rs` alone.

pub mod auth;
pub mod auth_cache;
pub mod error;
pub mod http;
pub mod openapi;
pub mod routes;
pub mod startup;
pub mod state;
