//! The cookies this service sets: the `auth_token` JWT, the refresh cookie and the OAuth state.

use domain::infra::config::{CookieSettings, SameSite};
use poem::web::cookie::{Cookie, CookieJar, SameSite as PoemSameSite};

pub const AUTH_COOKIE: &str = "auth_token";
/// Opaque refresh token; sent only to `/api/auth` so ordinary API calls never carry it.
pub const REFRESH_COOKIE: &str = "auth_refresh";
pub const REFRESH_COOKIE_PATH: &str = "/api/auth";
/// `__Host-` pins the cookie to this host over HTTPS; plain-HTTP demos fall back to a bare name.
pub const STATE_COOKIE_SECURE: &str = "__Host-oauth_state";
pub const STATE_COOKIE_PLAIN: &str = "oauth_state";

pub fn state_cookie_name(settings: &CookieSettings) -> &'static str {
    if settings.secure {
        STATE_COOKIE_SECURE
    } else {
        STATE_COOKIE_PLAIN
    }
}

fn same_site(s: SameSite) -> PoemSameSite {
    match s {
        SameSite::Lax => PoemSameSite::Lax,
        SameSite::Strict => PoemSameSite::Strict,
        SameSite::None => PoemSameSite::None,
    }
}

fn base(name: &str, value: String, path: &str, settings: &CookieSettings) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(settings.secure);
    cookie.set_path(path);
    cookie.set_same_site(same_site(settings.same_site));
    if let Some(domain) = &settings.domain {
        cookie.set_domain(domain);
    }
    cookie
}

pub fn set_auth(jar: &CookieJar, token: &str, max_age_secs: i64, settings: &CookieSettings) {
    let mut cookie = base(AUTH_COOKIE, token.to_owned(), "/", settings);
    cookie.set_max_age(std::time::Duration::from_secs(
        max_age_secs.max(0).unsigned_abs(),
    ));
    jar.add(cookie);
}

pub fn set_refresh(jar: &CookieJar, token: &str, max_age_secs: i64, settings: &CookieSettings) {
    let mut cookie = base(
        REFRESH_COOKIE,
        token.to_owned(),
        REFRESH_COOKIE_PATH,
        settings,
    );
    cookie.set_max_age(std::time::Duration::from_secs(
        max_age_secs.max(0).unsigned_abs(),
    ));
    jar.add(cookie);
}

/// Expires both sign-in cookies with the same Path and Domain they were set with.
pub fn clear_sign_in(jar: &CookieJar, settings: &CookieSettings) {
    for (name, path) in [(AUTH_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_COOKIE_PATH)] {
        let mut cookie = base(name, String::new(), path, settings);
        cookie.set_max_age(std::time::Duration::ZERO);
        jar.add(cookie);
    }
}

/// The state cookie is host-only, Lax (it must survive the redirect back from Patreon), ≤ 10 min.
pub fn set_state(jar: &CookieJar, state: &str, settings: &CookieSettings) {
    let host_only = CookieSettings {
        domain: None,
        secure: settings.secure,
        same_site: SameSite::Lax,
    };
    let mut cookie = base(
        state_cookie_name(settings),
        state.to_owned(),
        "/",
        &host_only,
    );
    cookie.set_max_age(std::time::Duration::from_secs(
        domain::auth::sign_in::STATE_TTL
            .num_seconds()
            .unsigned_abs(),
    ));
    jar.add(cookie);
}

pub fn clear_state(jar: &CookieJar, settings: &CookieSettings) {
    let host_only = CookieSettings {
        domain: None,
        secure: settings.secure,
        same_site: SameSite::Lax,
    };
    let mut cookie = base(state_cookie_name(settings), String::new(), "/", &host_only);
    cookie.set_max_age(std::time::Duration::ZERO);
    jar.add(cookie);
}
