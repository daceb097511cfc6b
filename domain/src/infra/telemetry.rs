//! Logging setup shared by the binaries. `RUST_LOG` filters; `LOG_FORMAT=json` for production.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(fmt::layer().json().with_current_span(false))
            .init();
    } else {
        registry.with(fmt::layer().with_target(false)).init();
    }
}
