//! `/metrics` (Prometheus) and the request histogram behind it. Requests are counted under the
//! route template they matched and a fixed set of methods, so scanners and random paths add no
//! new series: the label sets are bounded by the routes this service has.

use std::{sync::LazyLock, time::Instant};

use domain::infra::metrics::{self, HttpLabels, Scrape, metrics};
use poem::{
    Endpoint, IntoResponse, Request, Response, Result, handler,
    http::{Method, StatusCode, header},
    web::Data,
};

use crate::{error::ApiError, state::AppState};

/// Times every request into `gate_http_request_duration_seconds`.
pub async fn observe<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.uri().path());
    let response = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    };
    let labels = HttpLabels {
        method: method.to_owned(),
        route: route.to_owned(),
        status: response.status().as_u16(),
    };
    metrics()
        .http_requests
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Methods counted by name; any other is `OTHER`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Route templates (`/api/admin/members/{id}`): the spec's operations and the routes
/// `startup::app` mounts outside it.
static ROUTES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let spec: serde_json::Value =
        serde_json::from_str(&crate::openapi::spec_json()).unwrap_or_default();
    let documented = spec
        .get("paths")
        .and_then(|p| p.as_object())
        .into_iter()
        .flat_map(|paths| paths.keys().cloned());
    let mounted = [
        "/",
        "/demo.js",
        "/openapi.json",
        "/metrics",
        "/api/patreon/webhook",
    ]
    .into_iter()
    .chain(crate::routes::admin_page::PATHS)
    .map(String::from);
    documented.chain(mounted).collect()
});

/// The template `path` matches, `/docs` for the docs and their assets, or `other`.
pub fn route_label(path: &str) -> &'static str {
    if path == "/docs" || path.starts_with("/docs/") {
        return "/docs";
    }
    ROUTES
        .iter()
        .find(|template| matches_template(template, path))
        .map_or("other", String::as_str)
}

/// Whether `path` has the template's segments, a `{param}` standing for any non-empty one.
fn matches_template(template: &str, path: &str) -> bool {
    let (mut want, mut got) = (template.split('/'), path.split('/'));
    loop {
        match (want.next(), got.next()) {
            (None, None) => return true,
            (Some(w), Some(g)) if w == g => {}
            (Some(w), Some(g)) if w.starts_with('{') && w.ends_with('}') && !g.is_empty() => {}
            _ => return false,
        }
    }
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
        Scrape::Disabled => ApiError::new(
            StatusCode::FORBIDDEN,
            "metrics_disabled",
            "Set METRICS_TOKEN to serve /metrics.",
        )
        .to_response(),
        Scrape::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
        Scrape::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{method_label, route_label};
    use poem::http::Method;

    #[test]
    fn routes_are_counted_by_template_and_anything_else_as_other() {
        assert_eq!(route_label("/api/auth/me"), "/api/auth/me");
        assert_eq!(
            route_label("/api/admin/members/42/recheck"),
            "/api/admin/members/{id}/recheck"
        );
        assert_eq!(route_label("/api/jobs/3f9a0c1b2d4e5f60"), "/api/jobs/{id}");
        assert_eq!(route_label("/api/patreon/webhook"), "/api/patreon/webhook");
        assert_eq!(
            route_label("/admin/dashboard/main.js"),
            "/admin/dashboard/main.js"
        );
        assert_eq!(route_label("/docs/oauth-receiver.html"), "/docs");
        for unknown in [
            "/wp-login.php",
            "/api/x1y2",
            "/api/jobs/",
            "/api/jobs/1/2",
            "//",
        ] {
            assert_eq!(route_label(unknown), "other", "{unknown}");
        }
        assert_eq!(method_label(&Method::GET), "GET");
        let made_up = Method::from_bytes(b"FROBNICATE").unwrap();
        assert_eq!(method_label(&made_up), "OTHER");
    }
}
