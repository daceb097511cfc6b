//! The signed-in member: who they are (`me`) and signing out (renewing is in `refresh`).

use chrono::{DateTime, Utc};
use domain::{auth::auth_events::AuthEvent, auth::sessions};
use entity::{session, user};
use poem::{Request, web::Data, web::cookie::CookieJar};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use secrecy::SecretString;

use super::ApiTags;
use crate::{
    auth::{self, MemberAuth},
    error::{ApiError, operation_errors},
    http::cookies,
    state::AppState,
};

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
            id: u.id.into(),
            patreon_id: u.patreon_id.to_string(),
            email: u.email.clone(),
            name: u.full_name.clone(),
            avatar_url: u.avatar_url.clone(),
            membership_active: u.membership_active,
            is_paid_member: domain::members::listing::is_paid_member(u, settings.stale_after, now),
            membership_tier: u.tier_title.clone(),
            is_team_member: settings.team_patreon_ids.contains(u.patreon_id.as_str()),
            is_admin: domain::auth::admins::is_admin(u, &settings.admin_patreon_ids),
            last_checked: u.last_checked,
            needs_relogin: u.needs_relogin,
            session_expires_at: s.expires_at,
        }
    }
}

operation_errors!(MeError {
    401 => Unauthorized: "No valid, unrevoked token.",
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

pub fn refresh_cookie(req: &Request) -> Option<SecretString> {
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
            tracing::info!(user_id = i64::from(principal.user.id), "signed out");
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
