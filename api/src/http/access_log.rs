//! One log line per request: method, path (never the query string, which carries OAuth codes and
//! states), status, latency, client address and a request id that is echoed back.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue};
use tracing::Instrument;

use crate::{http::client_ip::client_ip, state::AppState};

pub async fn log_request<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let started = Instant::now();
    let request_id = domain::infra::secrets::random_id();
    let ip = match req.data::<AppState>() {
        Some(state) => client_ip(&req, &state.settings.trusted_proxies),
        None => client_ip(&req, &Default::default()),
    };
    let method = req.method().clone();
    // `escape_debug` keeps CR/LF and other control characters out of the log line.
    let path = req.uri().path().escape_debug().to_string();
    let span = tracing::info_span!("request", request_id = %request_id, %ip, %method, path = %path);
    let result = next.call(req).instrument(span.clone()).await;
    let mut response = match result {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_us = started.elapsed().as_micros() as u64,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("X-Request-Id", value);
    }
    Ok(response)
}
