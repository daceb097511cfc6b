//! Response bodies in Patreon's shapes: JSON:API `errors[]` for the API, `{"error": ..}` for the
//! token endpoint.

use poem::Response;
use poem::http::StatusCode;
use serde_json::{Value, json};

pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/json")
        .body(body.to_string())
}

fn error_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// One JSON:API error object in Patreon's shape.
pub(crate) fn error_object(
    status: u16,
    code: Option<i64>,
    code_name: &str,
    title: &str,
    detail: &str,
) -> Value {
    json!({
        "code": code,
        "code_name": code_name,
        "detail": detail,
        "id": error_id(),
        "status": status.to_string(),
        "title": title,
    })
}

pub(crate) fn api_error(
    status: u16,
    code: Option<i64>,
    code_name: &str,
    title: &str,
    detail: &str,
) -> Response {
    let body = json!({ "errors": [error_object(status, code, code_name, title, detail)] });
    json_response(status, &body)
}

/// 401 as in `error-401-unauthorized.json`.
pub(crate) fn unauthorized() -> Response {
    api_error(
        401,
        Some(1),
        "Unauthorized",
        "Unauthorized",
        "The server could not verify that you are authorized to access the URL requested.",
    )
}

/// 403 for requests without a `User-Agent`.
pub(crate) fn forbidden_no_user_agent() -> Response {
    api_error(
        403,
        None,
        "Forbidden",
        "Forbidden",
        "Requests must carry a User-Agent header.",
    )
}

pub(crate) fn not_found(detail: &str) -> Response {
    api_error(404, Some(4), "ResourceMissing", "Not Found", detail)
}

/// 400 for a bad query parameter; `source.parameter` names it (as the cursor-expiry error).
pub(crate) fn bad_parameter(parameter: &str, detail: &str) -> Response {
    let mut err = error_object(
        400,
        Some(3),
        "ParameterInvalid",
        "Invalid parameter",
        detail,
    );
    if let Some(obj) = err.as_object_mut() {
        obj.insert("source".into(), json!({ "parameter": parameter }));
    }
    json_response(400, &json!({ "errors": [err] }))
}

/// 429 as in `error-429-rate-limited.json`, plus a `Retry-After` header.
pub(crate) fn rate_limited(retry_after_secs: u64) -> Response {
    let title = "You have made too many attempts. Please try again later.";
    let mut err = error_object(429, None, "RequestThrottled", title, title);
    if let Some(obj) = err.as_object_mut() {
        obj.insert("retry_after_seconds".into(), json!(retry_after_secs));
    }
    let mut resp = json_response(429, &json!({ "errors": [err] }));
    if let Ok(v) = retry_after_secs.to_string().parse() {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}

/// Token endpoint error: `{"error": .., "error_description": ..}`.
pub(crate) fn token_error(status: u16, error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(d) => json!({ "error": error, "error_description": d }),
        None => json!({ "error": error }),
    };
    json_response(status, &body)
}
