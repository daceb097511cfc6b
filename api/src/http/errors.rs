//! Turns every error that escapes a handler (unknown route, unparsable input, auth failure) into
//! the standard JSON error body. Messages are fixed per status: input is never reflected.

use poem::{Error, IntoResponse, Response, http::StatusCode};

use crate::error::ApiError;

pub async fn render_error(err: Error) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.to_response();
    }
    if let Some(param) = err.downcast_ref::<poem_openapi::error::ParseParamError>() {
        // Parameter names come from our spec, never from the request, so they are safe to name.
        let code = match param.name {
            "return_to" => "invalid_return_to",
            "state" => "invalid_state",
            _ => "invalid_parameter",
        };
        let message = format!("The `{}` parameter is missing or invalid.", param.name);
        return ApiError::new(StatusCode::BAD_REQUEST, code, message).to_response();
    }
    if err.is_from_response() {
        // A typed operation error: already our JSON body.
        return err.into_response();
    }
    let status = err.status();
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("bad_request", "The request is malformed."),
        StatusCode::UNAUTHORIZED => return ApiError::unauthorized().to_response(),
        StatusCode::FORBIDDEN => ("forbidden", "This request is not allowed."),
        StatusCode::NOT_FOUND => ("not_found", "There is nothing here."),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "This method is not allowed here.")
        }
        StatusCode::LENGTH_REQUIRED => ("length_required", "A Content-Length header is required."),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests. Try again later."),
        s if s.is_client_error() => ("bad_request", "The request was rejected."),
        _ => {
            tracing::error!(error = %err, "unhandled error");
            return ApiError::internal().to_response();
        }
    };
    ApiError::new(status, code, message)
        .to_response()
        .into_response()
}
