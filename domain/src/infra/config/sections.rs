//! The settings that take more than one variable, or more than a parse, to read: tokens,
//! encryption keys, our Patreon client, origins, cookies and the queue's poll interval.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::vars::{Vars, problem};
use super::{ConfigError, CookieSettings, PatreonSettings, SameSite, origin_of};
use crate::auth::jwt::{JwtSecret, JwtSettings};
use crate::infra::crypto::{KeyId, TokenCipher};

type Lookup<'a> = Vars<&'a dyn Fn(&str) -> Option<String>>;

pub(super) fn jwt(v: &Lookup) -> Result<JwtSettings, ConfigError> {
    let jwt_secret = JwtSecret::parse(v.secret("JWT_SECRET")?)
        .map_err(|e| problem("JWT_SECRET", e.to_string()))?;
    let session_hours: i64 = v.parsed("JWT_EXPIRATION_HOURS", 168, "a whole number of hours")?;
    let access_minutes: i64 = v.parsed("ACCESS_TOKEN_MINUTES", 15, "a whole number of minutes")?;
    if !(1..=24 * 365).contains(&session_hours) {
        return Err(problem(
            "JWT_EXPIRATION_HOURS",
            "must be between 1 and 8760",
        ));
    }
    if !(1..=24 * 60).contains(&access_minutes) || access_minutes > session_hours * 60 {
        return Err(problem(
            "ACCESS_TOKEN_MINUTES",
            "must be between 1 and 1440 and within JWT_EXPIRATION_HOURS",
        ));
    }
    Ok(JwtSettings {
        secret: jwt_secret,
        issuer: v
            .optional("JWT_ISSUER")
            .unwrap_or_else(|| "patreon-gate".into()),
        audience: v.optional("JWT_AUDIENCE"),
        access_ttl: chrono::Duration::minutes(access_minutes),
        max_session_age: chrono::Duration::hours(session_hours),
    })
}

pub(super) fn token_cipher(v: &Lookup) -> Result<TokenCipher, ConfigError> {
    let key_id = KeyId::parse(
        &v.optional("TOKEN_ENCRYPTION_KEY_ID")
            .unwrap_or_else(|| "k1".into()),
    )
    .map_err(|e| problem("TOKEN_ENCRYPTION_KEY_ID", e.to_string()))?;
    let old_keys = match v.optional("TOKEN_ENCRYPTION_OLD_KEYS") {
        None => Vec::new(),
        Some(raw) => TokenCipher::parse_old_keys(&SecretString::from(raw))
            .map_err(|e| problem("TOKEN_ENCRYPTION_OLD_KEYS", e.to_string()))?,
    };
    TokenCipher::new(key_id, &v.secret("TOKEN_ENCRYPTION_KEY")?, old_keys)
        .map_err(|e| problem("TOKEN_ENCRYPTION_KEY", e.to_string()))
}

pub(super) fn patreon(v: &Lookup) -> Result<PatreonSettings, ConfigError> {
    let campaign_id = v.required("PATREON_CAMPAIGN_ID")?;
    if !crate::patreon::resources::is_numeric_id(&campaign_id) {
        return Err(problem(
            "PATREON_CAMPAIGN_ID",
            "must be Patreon's numeric campaign id",
        ));
    }
    Ok(PatreonSettings {
        client_id: v.required("PATREON_CLIENT_ID")?,
        client_secret: v.secret("PATREON_CLIENT_SECRET")?,
        redirect_uri: v.url("PATREON_REDIRECT_URI", v.required("PATREON_REDIRECT_URI")?)?,
        campaign_id,
        base_url: v.url(
            "PATREON_BASE_URL",
            v.optional("PATREON_BASE_URL")
                .unwrap_or_else(|| "https://www.patreon.com".into()),
        )?,
        authorize_url: v
            .optional("PATREON_AUTHORIZE_URL")
            .map(|raw| v.url("PATREON_AUTHORIZE_URL", raw))
            .transpose()?,
        scopes: v
            .optional("PATREON_SCOPES")
            .unwrap_or_else(|| "identity identity[email]".into()),
        timeout: Duration::from_secs(v.parsed(
            "PATREON_TIMEOUT_SECS",
            10,
            "a whole number of seconds",
        )?),
        creator_access_token: v
            .optional("PATREON_CREATOR_ACCESS_TOKEN")
            .map(SecretString::from),
        webhook_secret: v.optional("PATREON_WEBHOOK_SECRET").map(SecretString::from),
        requests_per_2s: v.parsed("PATREON_REQUESTS_PER_2S", 95, "a whole number")?,
        requests_per_token_per_min: v.parsed(
            "PATREON_REQUESTS_PER_TOKEN_PER_MIN",
            90,
            "a whole number",
        )?,
    })
}

/// `FRONTEND_URL`'s origin, then those of `CORS_ALLOWED_ORIGINS`.
pub(super) fn allowed_origins(v: &Lookup, frontend_url: &Url) -> Result<Vec<String>, ConfigError> {
    let mut allowed_origins = vec![origin_of(frontend_url)];
    for raw in v
        .optional("CORS_ALLOWED_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
    {
        if !raw.is_empty() {
            allowed_origins.push(origin_of(&v.url("CORS_ALLOWED_ORIGINS", raw.to_owned())?));
        }
    }
    Ok(allowed_origins)
}

pub(super) fn cookie(v: &Lookup) -> Result<CookieSettings, ConfigError> {
    let same_site = match v
        .optional("COOKIE_SAMESITE")
        .map(|s| s.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("lax") => SameSite::Lax,
        Some("strict") => SameSite::Strict,
        Some("none") => SameSite::None,
        Some(_) => return Err(problem("COOKIE_SAMESITE", "must be Lax, Strict or None")),
    };
    let cookie_domain = v.optional("COOKIE_DOMAIN");
    if cookie_domain.as_deref().is_some_and(|d| {
        !d.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    }) {
        return Err(problem(
            "COOKIE_DOMAIN",
            "must be a bare host name such as example.com",
        ));
    }
    let cookie = CookieSettings {
        domain: cookie_domain,
        secure: v.flag("COOKIE_SECURE", true)?,
        same_site,
    };
    if cookie.same_site == SameSite::None && !cookie.secure {
        return Err(problem(
            "COOKIE_SAMESITE",
            "None requires COOKIE_SECURE=true",
        ));
    }
    Ok(cookie)
}

pub(super) fn queue_poll(v: &Lookup) -> Result<Duration, ConfigError> {
    let queue_poll = v.parsed::<u64>("QUEUE_POLL_MS", 200, "a whole number of milliseconds")?;
    if !(1..=60_000).contains(&queue_poll) {
        return Err(problem(
            "QUEUE_POLL_MS",
            "must be between 1 and 60000 milliseconds",
        ));
    }
    Ok(Duration::from_millis(queue_poll))
}
