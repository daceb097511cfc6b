//! `/metrics` (Prometheus) and the request histogram behind it.

use std::time::Instant;

use domain::metrics::{self, HttpLabels, Scrape, metrics};
use poem::{
    Endpoint, IntoResponse, Request, Response, Result, handler,
    http::{StatusCode, header},
    web::Data,
};

use crate::state::AppState;

/// Times every request into `gate_http_request_duration_seconds`.
pub async fn observe<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = metrics::route_label(req.uri().path());
    let response = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let labels = HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics()
        .http_requests
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

#[handler]
pub async fn scrape(req: &Request, state: Data<&AppState>) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let settings = &state.settings;
    let scrape = metrics::scrape(
        settings.metrics_token.as_ref(),
        authorization,
        &state.db,
        &settings.verify_schedule,
    );
    match scrape.await {
        Scrape::Metrics(body) => Response::builder()
            .content_type(metrics::CONTENT_TYPE)
            .body(body),
        Scrape::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
        Scrape::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
