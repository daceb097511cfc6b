//! `POST /api/patreon/webhook`: Patreon's member events, signed with the webhook secret.
//!
//! Verified over the exact bytes received, recorded once per distinct body, acknowledged; the
//! worker applies them. No Patreon call happens here, and the answer says nothing about what
//! was found: Patreon gets the same 200 for a new, repeated or foreign delivery.

use chrono::Utc;
use domain::{
    infra::metrics::metrics,
    work::jobs::Job,
    work::webhooks::{self, MAX_BODY_BYTES, Received},
};
use poem::{Body, IntoResponse, Request, Response, handler, http::StatusCode, web::Data};

use crate::{error::ApiError, state::AppState};

fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    ApiError::new(status, code, message).to_response()
}

#[handler]
pub async fn receive(req: &Request, body: Body, state: Data<&AppState>) -> Response {
    let Some(secret) = state.settings.patreon.webhook_secret.as_ref() else {
        metrics().webhook("not_configured");
        return refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "Webhooks are not configured (PATREON_WEBHOOK_SECRET).",
        );
    };
    let Ok(bytes) = body.into_bytes_limit(MAX_BODY_BYTES).await else {
        metrics().webhook("too_large");
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large.",
        );
    };
    let signature = req
        .headers()
        .get("x-patreon-signature")
        .and_then(|v| v.to_str().ok());
    if !webhooks::signature_is_valid(secret, &bytes, signature) {
        metrics().webhook("bad_signature");
        tracing::warn!(
            bytes = bytes.len(),
            "webhook refused: bad or missing signature"
        );
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "Missing or invalid X-Patreon-Signature.",
        );
    }
    let trigger = req
        .headers()
        .get("x-patreon-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let campaign = &state.settings.patreon.campaign_id;
    let received = match webhooks::receive(&state.db, &bytes, trigger, campaign, Utc::now()).await {
        Ok(Ok(received)) => received,
        Ok(Err(malformed)) => {
            metrics().webhook("malformed");
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed_webhook",
                &malformed.to_string(),
            );
        }
        // Not acknowledged, so Patreon delivers it again later.
        Err(e) => return ApiError::from(e).to_response(),
    };
    match received {
        Received::New(event_id) => {
            metrics().webhook("accepted");
            if let Err(e) = state.jobs.push(Job::ApplyWebhook { event_id }).await {
                // Recorded already: the worker's reconciler pushes it again.
                tracing::warn!(event_id = i64::from(event_id), error = %e, "cannot queue a webhook event");
            }
        }
        Received::Duplicate => metrics().webhook("duplicate"),
        Received::OtherCampaign => metrics().webhook("other_campaign"),
    }
    (StatusCode::OK, "").into_response()
}
