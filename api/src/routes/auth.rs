//! Signing in with Patreon: start (`login`), finish (`callback`), and the handoff exchange.

use chrono::Utc;
use domain::{PatreonUserId, auth::auth_events::AuthEvent, auth::sign_in, infra::secrets};
use poem::{Request, web::Data, web::cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};
use url::Url;

use super::{ApiTags, session::issue_access_token};
use crate::{
    error::{ApiError, operation_errors},
    http::cookies,
    state::AppState,
};

pub struct AuthApi;

#[derive(ApiResponse)]
enum RedirectResponse {
    /// Continue in the browser at `Location`.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String),
}

operation_errors!(LoginError {
    400 => BadRequest: "`return_to` is not a relative path on the frontend.",
    429 => TooManyRequests: "Too many sign-in attempts from this client.",
});

operation_errors!(CallbackError {
    400 => BadRequest: "The `state` is missing, does not match this browser, expired or was already used.",
    429 => TooManyRequests: "Too many callbacks from this client.",
});

#[derive(Object)]
struct HandoffRequest {
    /// The `handoff` value from the post-sign-in redirect.
    #[oai(validator(pattern = "^[A-Za-z0-9_-]{16,128}$"))]
    handoff: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct TokenBody {
    /// A JWT for `Authorization: Bearer`.
    token: String,
    /// Renews the sign-in: send it as `{"refreshToken": …}` to `POST /api/auth/refresh`, which
    /// answers with a new JWT and the next refresh token (this one is then spent). Keep it out
    /// of URLs and logs; the sign-in's refresh cookie stops working once it is handed out here.
    refresh_token: String,
    /// When that JWT expires: renew it with `POST /api/auth/refresh` before then.
    expires_at: chrono::DateTime<Utc>,
}

operation_errors!(HandoffError {
    400 => BadRequest: "The handoff code is invalid, expired or already used.",
    415 => UnsupportedMediaType: "The body is not `application/json`.",
    401 => Unauthorized: "The sign-in session has ended.",
    429 => TooManyRequests: "Too many attempts from this client.",
});

/// Where the member lands: `FRONTEND_URL` + `return_to`, with `auth=…` and friends appended.
fn landing_url(frontend: &Url, return_to: &str, params: &[(&str, &str)]) -> String {
    let mut url = frontend
        .join(return_to)
        .unwrap_or_else(|_| frontend.clone());
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

#[OpenApi(tag = "ApiTags::SignIn")]
impl AuthApi {
    /// Start signing in: redirects to Patreon with a fresh single-use `state` bound to this
    /// browser by a short-lived cookie.
    #[oai(path = "/api/auth/patreon/login", method = "get")]
    async fn login(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        /// Path on the frontend to land on afterwards, e.g. `/posts/42`.
        #[oai(validator(pattern = "^/", max_length = 1024))]
        return_to: Query<Option<String>>,
    ) -> Result<RedirectResponse, LoginError> {
        let return_to =
            sign_in::validate_return_to(return_to.as_deref(), &state.settings.frontend_url)?;
        let nonce = sign_in::begin(&state.db, return_to, Utc::now()).await?;
        cookies::set_state(jar, &nonce, &state.settings.cookie);
        Ok(RedirectResponse::Found(
            state.patreon.authorize_url(&nonce).to_string(),
        ))
    }

    /// Patreon sends the browser back here. Checks `state`, trades the code, records the member
    /// and their membership, sets the `auth_token` cookie and redirects to the frontend with
    /// `auth=success&handoff=…`. Failures after a valid `state` redirect with
    /// `auth=error&reason=…` (`access_denied`, `patreon_unavailable`, `patreon_error`).
    #[oai(path = "/api/auth/patreon/callback", method = "get")]
    async fn callback(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        req: &Request,
        #[oai(validator(max_length = 1024))] code: Query<Option<String>>,
        #[oai(name = "state", validator(max_length = 256))] oauth_state: Query<Option<String>>,
        /// Set by Patreon when the member declined; never echoed.
        #[oai(validator(max_length = 256))]
        error: Query<Option<String>>,
    ) -> Result<RedirectResponse, CallbackError> {
        let now = Utc::now();
        let settings = &state.settings;
        let bound = req
            .cookie()
            .get(cookies::state_cookie_name(&settings.cookie))
            .map(|c| c.value_str().to_owned());
        cookies::clear_state(jar, &settings.cookie);
        let nonce = oauth_state.0.ok_or(domain::Error::InvalidState)?;
        if !bound.is_some_and(|b| secrets::constant_time_eq(&b, &nonce)) {
            tracing::info!("sign-in state does not match this browser");
            count_sign_in("invalid_state");
            return Err(domain::Error::InvalidState.into());
        }
        let return_to = sign_in::consume_state(&state.db, &nonce, now).await?;
        let fail = |reason: &'static str| {
            count_sign_in(reason);
            Ok(RedirectResponse::Found(landing_url(
                &settings.frontend_url,
                &return_to,
                &[("auth", "error"), ("reason", reason)],
            )))
        };
        let Some(code) = code.0.filter(|_| error.is_none()) else {
            tracing::info!("member declined the Patreon consent");
            return fail("access_denied");
        };
        match sign_in::complete(&state.db, &state.patreon, settings, &code, now).await {
            Ok(signed_in) => {
                start_session(&state, jar, &signed_in, now)?;
                count_sign_in("ok");
                release_waiting_webhooks(&state, &signed_in.user.patreon_id).await;
                let to = landing_url(
                    &settings.frontend_url,
                    &return_to,
                    &[("auth", "success"), ("handoff", &signed_in.handoff)],
                );
                Ok(RedirectResponse::Found(to))
            }
            Err(domain::Error::Patreon(e)) => {
                tracing::warn!(reason = e.kind(), "sign-in failed at Patreon");
                fail(if e.is_transient() {
                    "patreon_unavailable"
                } else {
                    "patreon_error"
                })
            }
            Err(e) => Err(ApiError::from(e).into()),
        }
    }

    /// Trade the single-use `handoff` code from the sign-in redirect for a JWT and a refresh
    /// token (Bearer-mode frontends). Valid for 60 seconds, once.
    #[oai(path = "/api/auth/token", method = "post")]
    async fn token(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        body: Json<HandoffRequest>,
    ) -> Result<Json<TokenBody>, HandoffError> {
        let redeemed = sign_in::redeem_handoff(&state.db, &body.handoff, Utc::now()).await?;
        let issued = issue_access_token(&state, jar, &redeemed.user, &redeemed.session, false)?;
        Ok(Json(TokenBody {
            token: issued.token,
            refresh_token: secrecy::ExposeSecret::expose_secret(&redeemed.refresh_token).to_owned(),
            expires_at: issued.expires_at,
        }))
    }
}

/// Counts a finished sign-in: `ok`, or why it failed.
/// Sets the new session's cookies (access token and refresh token) and drops any cached view
/// of the member, whose record the sign-in just rewrote.
fn start_session(
    state: &AppState,
    jar: &CookieJar,
    signed_in: &sign_in::SignedIn,
    now: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let (user, new_session) = (&signed_in.user, &signed_in.session);
    state.auth_cache.forget(&AuthEvent::User(user.id));
    issue_access_token(state, jar, user, &new_session.session, true)?;
    let refresh_max_age = (new_session.session.expires_at - now).num_seconds();
    cookies::set_refresh(
        jar,
        secrecy::ExposeSecret::expose_secret(&new_session.refresh_token),
        refresh_max_age,
        &state.settings.cookie,
    );
    tracing::info!(user_id = i64::from(user.id), "signed in");
    Ok(())
}

fn count_sign_in(outcome: &'static str) {
    domain::infra::metrics::metrics()
        .sign_ins
        .get_or_create(&domain::infra::metrics::OutcomeLabels { outcome })
        .inc();
}

/// Webhook events that arrived before the member's first sign-in are applied now (the sign-in's
/// own check is newer, so they only confirm it). Never fails the sign-in.
async fn release_waiting_webhooks(state: &AppState, patreon_id: &PatreonUserId) {
    match domain::work::ledger::deliveries::release_waiting(&state.db, patreon_id).await {
        Ok(events) => {
            for event_id in events {
                let job = domain::work::jobs::Job::ApplyWebhook { event_id };
                if let Err(e) = state.jobs.push(job).await {
                    tracing::warn!(event_id = i64::from(event_id), error = %e, "cannot queue a waiting webhook event");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot release waiting webhook events"),
    }
}
