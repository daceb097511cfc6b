//! Renewing a sign-in from its refresh token: the browser's `auth_refresh` cookie, or a Bearer
//! client's refresh token in the body. A JWT alone never renews anything.

use chrono::{DateTime, Duration, Utc};
use domain::{
    auth::auth_events::AuthEvent,
    auth::sessions,
    patreon::tokens::{self, KeepAlive},
};
use entity::user;
use poem::{Request, web::Data, web::cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::{ExposeSecret, SecretString};

use super::{
    ApiTags,
    session::{IssuedToken, issue_access_token, refresh_cookie},
};
use crate::{
    auth::{self, Via},
    error::{ApiError, operation_errors},
    http::{cookies, optional_json::OptionalJson},
    state::AppState,
};

/// The Patreon token is refreshed when it would expire within this long.
const PATREON_REFRESH_WINDOW: Duration = Duration::minutes(5);
/// A refresh Patreon could not take now is tried again by the worker after this long.
const POSTPONED_REFRESH_DELAY: std::time::Duration = std::time::Duration::from_secs(30);
const RENEWED: &str = "Session renewed.";

pub struct RefreshApi;

/// A Bearer client's refresh token, as `POST /api/auth/token` or the last renewal handed it out.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct RefreshRequest {
    #[oai(validator(min_length = 1, max_length = 256))]
    refresh_token: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Renewed {
    /// Bearer callers only (refresh token sent in the body): the new JWT. Cookie callers get it
    /// only as the httpOnly `auth_token` cookie, out of reach of scripts.
    #[oai(skip_serializing_if_is_none)]
    token: Option<String>,
    /// Bearer callers only: the next refresh token; the one sent is spent.
    #[oai(skip_serializing_if_is_none)]
    refresh_token: Option<String>,
    /// When the new JWT expires: renew before then.
    expires_at: DateTime<Utc>,
    message: String,
}

#[derive(ApiResponse)]
enum RefreshResponse {
    /// Renewed: a new JWT and a new refresh token, as cookies (cookie callers) or in the body
    /// (Bearer callers).
    #[oai(status = 200)]
    Renewed(Json<Renewed>),
    /// A concurrent renewal with this same refresh token (another tab) replaced it less than 60 s
    /// ago: nothing new is issued, and the credentials that renewal received are the current
    /// ones (a browser already holds them as cookies).
    #[oai(status = 204)]
    AlreadyRenewed,
}

operation_errors!(RefreshError {
    400 => BadRequest: "The body is not `{\"refreshToken\": \"…\"}`.",
    401 => Unauthorized: "No refresh credential, an unknown or spent one, or the sign-in ended (or the member's Patreon authorization ended: `needs_relogin`).",
    403 => Forbidden: "Cookie-authenticated request without `X-Requested-With` or from a foreign `Origin`.",
    415 => UnsupportedMediaType: "A body that is not `application/json`.",
    429 => TooManyRequests: "Too many refreshes from this client.",
});

/// Trades a refresh token for a rotated one; `refresh_token` is `None` inside the grace window.
async fn rotate(state: &AppState, token: &SecretString) -> Result<sessions::Renewed, ApiError> {
    let rotated = sessions::rotate_refresh_token(&state.db, token, Utc::now()).await;
    if rotated.is_err() {
        // A replayed token may just have revoked its session: stop serving it from memory.
        if let Some(id) = sessions::session_id_of(token) {
            state.auth_cache.forget(&AuthEvent::Session(id.to_owned()));
        }
    }
    Ok(rotated?)
}

/// Keeps the member's Patreon token fresh; `Err` only when their Patreon authorization is dead.
/// Anything else Patreon answers waits for the worker: the renewal has already rotated the
/// refresh token, so failing now would lose the new one.
async fn keep_patreon_token_alive(
    state: &AppState,
    user: &user::Model,
) -> Result<String, ApiError> {
    let cipher = &state.settings.token_cipher;
    let kept = tokens::keep_alive(
        &state.db,
        &state.patreon,
        cipher,
        user,
        PATREON_REFRESH_WINDOW,
    )
    .await;
    match kept {
        Ok(KeepAlive::Fresh) => Ok(RENEWED.to_owned()),
        Ok(KeepAlive::Postponed) | Err(domain::Error::Patreon(_)) => {
            // The worker takes it from here, with backoff; if even the push fails, its
            // reconciler finds the expiring token on its own.
            let retry = domain::work::jobs::Job::RefreshToken {
                user_id: user.id,
                attempt: 0,
            };
            if let Err(e) = state.jobs.push_after(retry, POSTPONED_REFRESH_DELAY).await {
                tracing::warn!(user_id = i64::from(user.id), error = %e, "cannot queue the postponed token refresh");
            }
            Ok(format!(
                "{RENEWED} Patreon is unreachable, so its token refresh will be retried later."
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[OpenApi(tag = "ApiTags::Session")]
impl RefreshApi {
    /// Renew the sign-in while it lasts (`JWT_EXPIRATION_HOURS`), from its refresh token only:
    /// the `auth_refresh` cookie (browsers: the new JWT and refresh token come back as cookies,
    /// never in the body) or `{"refreshToken": …}` in the body (Bearer clients: the body holds
    /// the new `token` and the next `refreshToken`). A JWT alone renews nothing. The refresh
    /// token rotates on every use; the one just replaced is answered 204 for 60 s (two tabs
    /// renewing at once) and ends the whole sign-in after that (a stolen copy was replayed).
    /// Refreshes the member's Patreon token too when it expires within 5 minutes; if Patreon
    /// cannot do it now the session is still renewed and the worker retries later, so an
    /// outage never signs a member out.
    #[oai(path = "/api/auth/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        req: &Request,
        body: OptionalJson<RefreshRequest>,
    ) -> Result<RefreshResponse, RefreshError> {
        let (presented, via) = match (body.0, refresh_cookie(req)) {
            (Some(body), _) => (SecretString::from(body.refresh_token), Via::Bearer),
            (None, Some(cookie)) => {
                auth::require_same_site_request(req, &state)?;
                (cookie, Via::Cookie)
            }
            (None, None) => {
                tracing::info!(reason = "no refresh token", "authentication failed");
                return Err(ApiError::unauthorized().into());
            }
        };
        let renewed = rotate(&state, &presented).await?;
        let Some(next) = renewed.refresh_token else {
            return Ok(RefreshResponse::AlreadyRenewed);
        };
        let (session, user) = (renewed.session, renewed.user);
        let message = match keep_patreon_token_alive(&state, &user).await {
            Ok(message) => message,
            Err(e) => {
                if e.code == "needs_relogin" {
                    state.auth_cache.forget(&AuthEvent::User(user.id));
                    cookies::clear_sign_in(jar, &state.settings.cookie);
                }
                return Err(e.into());
            }
        };
        let by_cookie = via == Via::Cookie;
        let IssuedToken { token, expires_at } =
            issue_access_token(&state, jar, &user, &session, by_cookie)?;
        if by_cookie {
            let max_age = (session.expires_at - Utc::now()).num_seconds();
            cookies::set_refresh(jar, next.expose_secret(), max_age, &state.settings.cookie);
        }
        let (token, refresh_token) = match via {
            Via::Cookie => (None, None),
            Via::Bearer => (Some(token), Some(next.expose_secret().to_owned())),
        };
        Ok(RefreshResponse::Renewed(Json(Renewed {
            token,
            refresh_token,
            expires_at,
            message,
        })))
    }
}
