//! The signed-in member: who they are (`me`), renewing the JWT (`refresh`) and signing out.

use chrono::{DateTime, Duration, Utc};
use domain::{
    auth_events::AuthEvent,
    patreon_tokens::{self, KeepAlive},
    sessions,
};
use entity::{session, user};
use poem::{Request, web::Data, web::cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::{ExposeSecret, SecretString};

use super::ApiTags;
use crate::{
    auth::{self, MemberAuth, Via},
    error::{ApiError, operation_errors},
    http::cookies,
    state::AppState,
};

/// The Patreon token is refreshed when it would expire within this long.
const PATREON_REFRESH_WINDOW: Duration = Duration::minutes(5);
/// A refresh Patreon could not take now is tried again by the worker after this long.
const POSTPONED_REFRESH_DELAY: std::time::Duration = std::time::Duration::from_secs(30);
const RENEWED: &str = "Session renewed.";

pub struct SessionApi;

/// The signed-in member as the frontend sees them.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Me {
    id: i64,
    patreon_id: String,
    email: Option<String>,
    name: Option<String>,
    avatar_url: Option<String>,
    /// The membership rule granted paid access at the last successful check.
    membership_active: bool,
    /// May enter paid content now: `membershipActive`, and that check is recent enough
    /// (within `STALE_AFTER_DAYS`).
    is_paid_member: bool,
    /// Title of the most expensive tier the member is entitled to.
    membership_tier: Option<String>,
    is_team_member: bool,
    is_admin: bool,
    last_checked: Option<DateTime<Utc>>,
    /// The member's Patreon authorization is dead: their status cannot be verified again until
    /// they sign in with Patreon once more.
    needs_relogin: bool,
    /// When this sign-in ends for good (`JWT_EXPIRATION_HOURS` after it began).
    session_expires_at: DateTime<Utc>,
}

impl Me {
    fn new(u: &user::Model, s: &session::Model, state: &AppState, now: DateTime<Utc>) -> Self {
        let settings = &state.settings;
        Self {
            id: u.id,
            patreon_id: u.patreon_id.clone(),
            email: u.email.clone(),
            name: u.full_name.clone(),
            avatar_url: u.avatar_url.clone(),
            membership_active: u.membership_active,
            is_paid_member: domain::members::is_paid_member(u, settings.stale_after, now),
            membership_tier: u.tier_title.clone(),
            is_team_member: settings.team_patreon_ids.contains(&u.patreon_id),
            is_admin: domain::admins::is_admin(u, &settings.admin_patreon_ids),
            last_checked: u.last_checked,
            needs_relogin: u.needs_relogin,
            session_expires_at: s.expires_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct Renewed {
    /// A fresh JWT (also set as the `auth_token` cookie for cookie callers).
    token: String,
    /// When that JWT expires: renew before then.
    expires_at: DateTime<Utc>,
    message: String,
}

operation_errors!(MeError {
    401 => Unauthorized: "No valid, unrevoked token.",
});

operation_errors!(RefreshError {
    401 => Unauthorized: "No live sign-in session (or the member's Patreon authorization ended: `needs_relogin`).",
    403 => Forbidden: "Cookie-authenticated request without `X-Requested-With` or from a foreign `Origin`.",
    429 => TooManyRequests: "Too many refreshes from this client.",
    502 => BadGateway: "Patreon refused to refresh the member's Patreon token; nothing was changed.",
});

operation_errors!(LogoutError {
    403 => Forbidden: "Cookie-authenticated request without `X-Requested-With` or from a foreign `Origin`.",
});

#[derive(ApiResponse)]
enum LoggedOut {
    /// The session is revoked and the cookies are cleared.
    #[oai(status = 204)]
    Done,
}

/// Signs a JWT for `session`, optionally setting it as the `auth_token` cookie.
/// A freshly signed JWT and when it expires.
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

pub fn issue_access_token(
    state: &AppState,
    jar: &CookieJar,
    user: &user::Model,
    session: &session::Model,
    set_cookie: bool,
) -> Result<IssuedToken, ApiError> {
    let now = Utc::now();
    let (token, claims) = state
        .jwt
        .issue(&user.patreon_id, &session.id, session.expires_at, now)
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign a JWT");
            ApiError::internal()
        })?;
    if set_cookie {
        cookies::set_auth(
            jar,
            &token,
            claims.exp - now.timestamp(),
            &state.settings.cookie,
        );
    }
    let expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
    Ok(IssuedToken { token, expires_at })
}

/// Trades the refresh cookie for a rotated one (set on `jar`) and returns its session and user.
async fn rotate(
    state: &AppState,
    jar: &CookieJar,
    token: &SecretString,
) -> Result<(session::Model, user::Model), ApiError> {
    let now = Utc::now();
    let rotated = sessions::rotate_refresh_token(&state.db, token, now).await;
    if rotated.is_err() {
        // A reused token may just have revoked its session: stop serving it from memory.
        if let Some(id) = sessions::session_id_of(token) {
            state.auth_cache.forget(&AuthEvent::Session(id.to_owned()));
        }
    }
    let renewed = rotated?;
    if let Some(next) = &renewed.refresh_token {
        let max_age = (renewed.session.expires_at - now).num_seconds();
        cookies::set_refresh(jar, next.expose_secret(), max_age, &state.settings.cookie);
    }
    Ok((renewed.session, renewed.user))
}

fn refresh_cookie(req: &Request) -> Option<SecretString> {
    req.cookie()
        .get(cookies::REFRESH_COOKIE)
        .map(|c| c.value_str().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 256)
        .map(SecretString::from)
}

#[OpenApi(tag = "ApiTags::Session")]
impl SessionApi {
    /// The signed-in member and their membership, read from the database on every call.
    #[oai(path = "/api/auth/me", method = "get")]
    async fn me(&self, state: Data<&AppState>, auth: MemberAuth) -> Result<Json<Me>, MeError> {
        let principal = auth.principal();
        Ok(Json(Me::new(
            &principal.user,
            &principal.session,
            &state,
            Utc::now(),
        )))
    }

    /// Renew the JWT while the sign-in lasts (`JWT_EXPIRATION_HOURS`), using the refresh
    /// cookie or a still-valid JWT. Refreshes the member's Patreon token too when it expires
    /// within 5 minutes; if Patreon is unreachable the session is still renewed and that refresh
    /// waits for later, so an outage never signs a member out.
    #[oai(path = "/api/auth/refresh", method = "post")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        req: &Request,
    ) -> Result<Json<Renewed>, RefreshError> {
        let (session, user, via_cookie) = match refresh_cookie(req) {
            Some(token) => {
                auth::require_same_site_request(req, &state)?;
                let (session, user) = rotate(&state, jar, &token).await?;
                (session, user, true)
            }
            None => {
                let principal = auth::authenticate(req).await?;
                principal.require_same_site(req, &state)?;
                let via_cookie = principal.via == Via::Cookie;
                (principal.session, principal.user, via_cookie)
            }
        };
        let cipher = &state.settings.token_cipher;
        let kept = patreon_tokens::keep_alive(
            &state.db,
            &state.patreon,
            cipher,
            &user,
            PATREON_REFRESH_WINDOW,
        )
        .await;
        let message = match kept {
            Ok(KeepAlive::Fresh) => RENEWED.to_owned(),
            Ok(KeepAlive::Postponed) => {
                // The worker takes it from here, with backoff; if even the push fails, its
                // reconciler finds the expiring token on its own.
                let retry = domain::jobs::Job::RefreshToken {
                    user_id: user.id,
                    attempt: 0,
                };
                if let Err(e) = state.jobs.push_after(retry, POSTPONED_REFRESH_DELAY).await {
                    tracing::warn!(user_id = user.id, error = %e, "cannot queue the postponed token refresh");
                }
                format!(
                    "{RENEWED} Patreon is unreachable, so its token refresh will be retried later."
                )
            }
            Err(e) => {
                if matches!(e, domain::Error::NeedsRelogin) {
                    state.auth_cache.forget(&AuthEvent::User(user.id));
                    cookies::clear_sign_in(jar, &state.settings.cookie);
                }
                return Err(ApiError::from(e).into());
            }
        };
        let IssuedToken { token, expires_at } =
            issue_access_token(&state, jar, &user, &session, via_cookie)?;
        Ok(Json(Renewed {
            token,
            expires_at,
            message,
        }))
    }

    /// Sign out: revokes the sign-in session on the server (every JWT of it is refused from
    /// now on) and clears the cookies. Idempotent.
    #[oai(path = "/api/auth/logout", method = "post")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        jar: &CookieJar,
        req: &Request,
    ) -> Result<LoggedOut, LogoutError> {
        let now = Utc::now();
        let creds = auth::presented(req).ok();
        let cookie_based =
            creds.as_ref().is_some_and(|c| c.bearer.is_none()) || refresh_cookie(req).is_some();
        if cookie_based {
            auth::require_same_site_request(req, &state)?;
        }
        if let Ok(principal) = auth::authenticate(req).await {
            sessions::revoke(&state.db, &principal.session.id, now).await?;
            state
                .auth_cache
                .forget(&AuthEvent::Session(principal.session.id.clone()));
            tracing::info!(user_id = principal.user.id, "signed out");
        }
        if let Some(token) = refresh_cookie(req) {
            // An expired JWT still ends its session through the refresh cookie.
            if sessions::revoke_if_refresh_matches(&state.db, &token, now).await? {
                let id = sessions::session_id_of(&token)
                    .unwrap_or_default()
                    .to_owned();
                state.auth_cache.forget(&AuthEvent::Session(id));
            }
        }
        cookies::clear_sign_in(jar, &state.settings.cookie);
        Ok(LoggedOut::Done)
    }
}
