//! Who is calling: a JWT from `Authorization: Bearer` or the `auth_token` cookie, verified, and
//! its sign-in session looked up (revocation is immediate). Anything ambiguous is refused: two
//! `Authorization` headers, a non-Bearer scheme next to a cookie, cookie and Bearer naming
//! different members. Tokens in query strings are never read.

use chrono::Utc;
use entity::{session, user};
use poem::{
    Request, RequestBody,
    http::{StatusCode, header},
};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme,
    auth::{ApiKey, Bearer},
    registry::Registry,
};

use crate::{error::ApiError, http::cookies::AUTH_COOKIE, state::AppState};

/// How the caller presented their token (cookie callers get CSRF checks on state changes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Bearer,
    Cookie,
}

/// An authenticated caller: their live session and user row.
#[derive(Clone, Debug)]
pub struct Principal {
    pub user: user::Model,
    pub session: session::Model,
    pub via: Via,
}

/// `Authorization: Bearer <JWT>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_bearer")]
pub struct BearerAuth(Principal);

/// The httpOnly `auth_token` cookie set at sign-in.
#[derive(SecurityScheme)]
#[oai(
    ty = "api_key",
    key_name = "auth_token",
    key_in = "cookie",
    checker = "check_cookie"
)]
pub struct CookieAuth(Principal);

/// Either way of presenting the JWT.
#[derive(SecurityScheme)]
pub enum MemberAuth {
    Bearer(BearerAuth),
    Cookie(CookieAuth),
}

/// A member with the admin role (`domain::auth::admins`), presenting the JWT either way. Every admin
/// operation takes it as its first argument, so the role is checked before the operation reads
/// its parameters or body. In the spec it is the same security schemes as [`MemberAuth`]: the
/// role is a property of the member, not another credential.
pub struct AdminAuth(Principal);

impl<'a> ApiExtractor<'a> for AdminAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <MemberAuth as ApiExtractor>::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        <MemberAuth as ApiExtractor>::security_schemes()
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let member = <MemberAuth as ApiExtractor>::from_request(req, body, param_opts).await?;
        let principal = member.into_principal();
        let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
        if !principal.is_admin(state) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This needs the admin role.",
            )
            .into());
        }
        Ok(Self(principal))
    }
}

impl AdminAuth {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl Principal {
    /// Whether this member has the admin role (their Patreon id is in `ADMIN_PATREON_IDS`).
    pub fn is_admin(&self, state: &AppState) -> bool {
        domain::auth::admins::is_admin(&self.user, &state.settings.admin_patreon_ids)
    }

    /// For state-changing calls: a cookie-authenticated caller must pass the CSRF guard
    /// (Bearer callers cannot be driven by another site).
    pub fn require_same_site(&self, req: &Request, state: &AppState) -> Result<(), ApiError> {
        match self.via {
            Via::Cookie => require_same_site_request(req, state),
            Via::Bearer => Ok(()),
        }
    }
}

impl MemberAuth {
    pub fn principal(&self) -> &Principal {
        match self {
            Self::Bearer(BearerAuth(p)) | Self::Cookie(CookieAuth(p)) => p,
        }
    }

    pub fn into_principal(self) -> Principal {
        match self {
            Self::Bearer(BearerAuth(p)) | Self::Cookie(CookieAuth(p)) => p,
        }
    }
}

async fn check_bearer(req: &Request, _: Bearer) -> poem::Result<Principal> {
    authenticate(req).await.map_err(poem::Error::from)
}

async fn check_cookie(req: &Request, _: ApiKey) -> poem::Result<Principal> {
    authenticate(req).await.map_err(poem::Error::from)
}

/// The raw credentials in a request, before verification.
pub struct Presented<'a> {
    pub bearer: Option<&'a str>,
    pub cookie: Option<String>,
}

/// Reads the credentials, refusing malformed or ambiguous combinations.
pub fn presented(req: &Request) -> Result<Presented<'_>, &'static str> {
    let mut auth_headers = req.headers().get_all(header::AUTHORIZATION).iter();
    let bearer = match (auth_headers.next(), auth_headers.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err("several Authorization headers"),
        (Some(value), None) => {
            let value = value
                .to_str()
                .map_err(|_| "unreadable Authorization header")?;
            let (scheme, token) = value
                .split_once(' ')
                .ok_or("malformed Authorization header")?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err("Authorization scheme is not Bearer");
            }
            let token = token.trim();
            if token.is_empty() {
                return Err("empty Bearer token");
            }
            Some(token)
        }
    };
    let mut cookies = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == AUTH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty());
    let cookie = cookies.next();
    if cookies.any(|other| Some(&other) != cookie.as_ref()) {
        return Err("several different auth_token cookies");
    }
    Ok(Presented { bearer, cookie })
}

/// Verifies whatever credentials the request carries and loads the live session.
pub async fn authenticate(req: &Request) -> Result<Principal, ApiError> {
    let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
    let creds = presented(req).map_err(reject)?;
    let (token, via) = match (&creds.bearer, &creds.cookie) {
        (Some(bearer), _) => (*bearer, Via::Bearer),
        (None, Some(cookie)) => (cookie.as_str(), Via::Cookie),
        (None, None) => return Err(reject("no credentials")),
    };
    let now = Utc::now();
    let claims = state
        .jwt
        .verify(token, now)
        .map_err(|e| reject(&e.to_string()))?;
    if let (Some(_), Some(cookie)) = (&creds.bearer, &creds.cookie) {
        // Both present: they must name the same member, or neither is trusted.
        let other = state
            .jwt
            .verify(cookie, now)
            .map_err(|_| reject("cookie token invalid next to Bearer"))?;
        if other.sub != claims.sub {
            return Err(reject("cookie and Bearer name different members"));
        }
    }
    if let Some((session, user)) = state.auth_cache.get(&claims.sid, &claims.sub, now) {
        return Ok(Principal { user, session, via });
    }
    let found = domain::auth::sessions::find_live(&state.db, &claims.sid, &claims.sub, now).await?;
    let (session, user) = found.ok_or_else(|| reject("session revoked or expired"))?;
    state.auth_cache.put(&session, &user);
    Ok(Principal { user, session, via })
}

fn reject(reason: &str) -> ApiError {
    tracing::info!(reason, "authentication failed");
    ApiError::unauthorized()
}

/// CSRF guard for cookie-authenticated state changes: the request must carry
/// `X-Requested-With` (forcing a CORS preflight cross-site) and, when the browser sends an
/// `Origin`, it must be one of ours.
pub fn require_same_site_request(req: &Request, state: &AppState) -> Result<(), ApiError> {
    if !req.headers().contains_key("x-requested-with") {
        return Err(ApiError::forbidden_origin());
    }
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or_default();
    if crate::http::is_own_origin(req, origin)
        || state.settings.allowed_origins.iter().any(|o| o == origin)
    {
        Ok(())
    } else {
        Err(ApiError::forbidden_origin())
    }
}
