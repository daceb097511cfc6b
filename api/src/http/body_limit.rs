//! Caps request bodies before anything reads them: over the limit → 413, a streamed body of
//! unknown length → 411.

use poem::{Endpoint, IntoResponse, Request, Response, Result, http::StatusCode, http::header};

use crate::error::ApiError;

/// Nothing this api accepts comes close; webhooks get their own limit.
pub const MAX_BODY_BYTES: u64 = 16 * 1024;
const WEBHOOK_PATH: &str = "/api/patreon/webhook";

pub async fn limit_body<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let limit = if req.uri().path() == WEBHOOK_PATH {
        domain::work::webhooks::MAX_BODY_BYTES as u64
    } else {
        MAX_BODY_BYTES
    };
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|s| s.parse::<u64>().ok()));
    match length {
        Some(None) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Invalid Content-Length.",
            )
            .into());
        }
        Some(Some(n)) if n > limit => {
            if limit != MAX_BODY_BYTES {
                domain::infra::metrics::metrics().webhook("too_large");
            }
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large.",
            )
            .into());
        }
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
            return Err(ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                "A Content-Length header is required.",
            )
            .into());
        }
        _ => {}
    }
    Ok(next.call(req).await?.into_response())
}
