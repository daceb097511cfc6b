//! `/metrics` (Prometheus) and the request histogram behind it.

use std::time::Instant;

use chrono::Utc;
use domain::metrics::{self, HttpLabels, metrics};
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
    if !metrics::scrape_allowed(state.settings.metrics_token.as_ref(), authorization) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match metrics()
        .render(&state.db, &state.settings.verify_schedule, Utc::now())
        .await
    {
        Ok(body) => Response::builder()
            .content_type(metrics::CONTENT_TYPE)
            .body(body),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read metrics from the database");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
