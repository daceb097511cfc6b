//! Middleware and HTTP helpers shared by every route.

pub mod access_log;
pub mod body_limit;
pub mod client_ip;
pub mod cookies;
pub mod errors;
pub mod headers;
pub mod metrics;
pub mod rate_limit;

use domain::config::Settings;
use poem::{http::Method, middleware::Cors};

/// Credentialed cross-origin calls only from the configured frontend origins; never an echo.
pub fn cors(settings: &Settings) -> Cors {
    Cors::new()
        .allow_origins(settings.allowed_origins.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["authorization", "content-type", "x-requested-with"])
        .max_age(600)
}
