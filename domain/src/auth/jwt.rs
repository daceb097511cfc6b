//! The service's access tokens: HS256 JWTs (docs/security-checklist.md §1 and §9, T01–T12).
//!
//! A plain PyJWT `jwt.decode(token, JWT_SECRET, algorithms=["HS256"])` must accept our tokens when
//! no audience is configured (§9): HMAC key = the secret's UTF-8 bytes, string `sub`/`jti`/`iss`/
//! `user_id`, integer `exp`/`iat`, no `nbf`, no `crit`, `aud` only when configured. Our verifier is
//! stricter (`typ`, `iat`, `user_id == sub`); revocation is the caller's job.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Deserializer, Serialize};

/// Header `typ` of access tokens (RFC 9068); no other token kind is signed with `JWT_SECRET`.
const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Clock-skew allowance for `exp`, `nbf` and `iat`, in seconds (docs/security-checklist.md §1:
/// at most 60, 30 suggested).
const LEEWAY_SECS: i64 = 30;
/// Our tokens are ~400 bytes; anything past this is rejected before base64 or JSON work.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Upper bound, in bytes, for `jti`, `sid` and `sub`.
const MAX_ID_LEN: usize = 128;
/// Token settings, from configuration.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HMAC key.
    pub secret: JwtSecret,
    /// `iss` of issued tokens; the only issuer accepted.
    pub issuer: String,
    /// When set, issued tokens carry it as `aud` and verified tokens must; when unset, tokens
    /// carrying any `aud` are refused (and a plain PyJWT call would refuse ours).
    pub audience: Option<String>,
    /// Access-token lifetime (≤ 15 min suggested).
    pub access_ttl: Duration,
    /// Absolute session lifetime: tokens with an older `iat` are refused.
    pub max_session_age: Duration,
}

/// Claims of an access token. `user_id` duplicates `sub` for PyJWT consumers
/// (docs/security-checklist.md §9).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Patreon user id; equal to `sub`.
    pub user_id: String,
    /// Patreon user id.
    pub sub: String,
    /// Session id (the caller checks the session row for revocation).
    pub sid: String,
    /// Token id, 128 random bits, hex.
    pub jti: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience, only when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Claims as read from an incoming token. Required fields are not `Option`, and `i64` refuses
/// strings, floats, `null` and values ≥ 2^63, so type confusion fails deserialization.
#[derive(Deserialize)]
struct IncomingClaims {
    user_id: String,
    sub: String,
    sid: String,
    jti: String,
    iat: i64,
    exp: i64,
    iss: String,
    /// Raw JSON, `Some(Null)` for an explicit `null`, so "present" means present.
    #[serde(default, deserialize_with = "present")]
    aud: Option<serde_json::Value>,
    /// `null` counts as absent, as in the crate and PyJWT.
    nbf: Option<i64>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// Why a token was refused or could not be issued. Never carries token text or claim values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not a well-formed compact JWS (segments, base64url, JSON, size).
    #[error("malformed token")]
    Malformed,
    /// `alg` other than HS256 (including `none`).
    #[error("token algorithm not allowed")]
    WrongAlgorithm,
    #[error("bad token signature")]
    BadSignature,
    /// A header we do not support (`crit`).
    #[error("unsupported token header")]
    UnsupportedHeader,
    #[error("wrong token type")]
    WrongType,
    /// `exp` passed, or `iat` older than the maximum session age.
    #[error("token expired")]
    Expired,
    /// `nbf` or `iat` in the future beyond the leeway.
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `aud` missing or foreign when configured, or present when not configured.
    #[error("wrong token audience")]
    WrongAudience,
    /// A claim is missing, mistyped or inconsistent; the reason is a fixed string.
    #[error("invalid token claims: {0}")]
    InvalidClaims(&'static str),
    #[error("could not encode token")]
    Encode,
}

/// Signing and verification state, built once at startup.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: Option<String>,
    access_ttl: Duration,
    max_session_age: Duration,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Builds keys and the `Validation` (HS256 only, leeway 30 s, `nbf` checked, issuer pinned,
    /// `exp`/`iss`/`sub` required, plus `aud` when an audience is configured).
    pub fn new(settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS.unsigned_abs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        let mut required = vec!["exp", "iss", "sub"];
        if let Some(aud) = &settings.audience {
            validation.set_audience(&[aud]);
            required.push("aud");
        }
        // Without an audience, `validation.aud` stays None and the crate refuses any `aud`.
        validation.set_required_spec_claims(&required);
        JwtKeys {
            encoding: EncodingKey::from_secret(settings.secret.as_bytes()),
            decoding: DecodingKey::from_secret(settings.secret.as_bytes()),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl: settings.access_ttl,
            max_session_age: settings.max_session_age,
        }
    }

    /// Issues an access token for `patreon_user_id` (in `user_id` and `sub`) and `session_id`
    /// (in `sid`), with a fresh 128-bit hex `jti`, `iat = now` and
    /// `exp = min(now + access_ttl, session_expires_at)`. Header: `alg: HS256, typ: at+jwt`.
    ///
    /// Refuses ids that [`JwtKeys::verify`] would refuse, and sessions already expired at `now`.
    pub fn issue(
        &self,
        patreon_user_id: &str,
        session_id: &str,
        session_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(String, AccessClaims), JwtError> {
        check_id(patreon_user_id, "sub empty or too long")?;
        check_id(session_id, "sid empty or too long")?;
        let ttl_end = now
            .checked_add_signed(self.access_ttl)
            .unwrap_or(session_expires_at);
        let exp = ttl_end.min(session_expires_at).timestamp();
        let iat = now.timestamp();
        if exp <= iat {
            return Err(JwtError::Expired);
        }
        let jti: String = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let claims = AccessClaims {
            user_id: patreon_user_id.to_owned(),
            sub: patreon_user_id.to_owned(),
            sid: session_id.to_owned(),
            jti,
            iat,
            exp,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(|_| JwtError::Encode)?;
        Ok((token, claims))
    }

    /// Verifies everything but revocation: size, signature and `alg` (HS256 only), `typ`, `crit`,
    /// `exp`/`nbf` (leeway 30 s), `iss`, `aud`, required claims, `user_id == sub`, `jti`/`sid`/`sub`
    /// non-empty and at most 128 bytes, and `iat` neither in the future beyond the leeway nor older
    /// than `max_session_age`.
    ///
    /// `jwk`/`jku`/`x5u`/`x5c`/`kid` headers are ignored: there is one key and nothing is fetched.
    /// The crate checks `exp`/`nbf` against the system clock; they are checked again against `now`,
    /// so a token must pass both.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::Malformed);
        }
        // One library call checks the signature and reads header and claims together.
        let data = jsonwebtoken::decode::<IncomingClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| map_decode_error(token, err.kind()))?;
        if data.header.crit.is_some() {
            return Err(JwtError::UnsupportedHeader);
        }
        if data.header.typ.as_deref() != Some(ACCESS_TOKEN_TYPE) {
            return Err(JwtError::WrongType);
        }
        let c = data.claims;
        let now = now.timestamp();
        if c.exp <= 0 {
            return Err(JwtError::InvalidClaims("exp not positive"));
        }
        if c.exp < now.saturating_sub(LEEWAY_SECS) {
            return Err(JwtError::Expired);
        }
        // Neither `iat` nor `nbf` (when present) may be in the future beyond the leeway.
        if c.iat.max(c.nbf.unwrap_or(0)) > now.saturating_add(LEEWAY_SECS) {
            return Err(JwtError::NotYetValid);
        }
        if c.iat < now.saturating_sub(self.max_session_age.num_seconds()) {
            return Err(JwtError::Expired);
        }
        if c.iss != self.issuer {
            return Err(JwtError::WrongIssuer);
        }
        let aud = self.check_audience(c.aud.as_ref())?;
        check_id(&c.sub, "sub empty or too long")?;
        check_id(&c.sid, "sid empty or too long")?;
        check_id(&c.jti, "jti empty or too long")?;
        if c.user_id != c.sub {
            return Err(JwtError::InvalidClaims("user_id differs from sub"));
        }
        Ok(AccessClaims {
            user_id: c.user_id,
            sub: c.sub,
            sid: c.sid,
            jti: c.jti,
            iat: c.iat,
            exp: c.exp,
            iss: c.iss,
            aud,
        })
    }

    /// Repeats the crate's audience rules on our typed view, so they hold even if crate defaults
    /// change: configured means present and ours (alone or in an array); unconfigured means
    /// absent (`"aud": null` and `[]` count as present).
    fn check_audience(&self, aud: Option<&serde_json::Value>) -> Result<Option<String>, JwtError> {
        let Some(ours) = &self.audience else {
            return match aud {
                None => Ok(None),
                Some(_) => Err(JwtError::WrongAudience),
            };
        };
        let matches = match aud {
            Some(serde_json::Value::String(s)) => s == ours,
            Some(serde_json::Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(ours)),
            _ => false,
        };
        if matches {
            Ok(Some(ours.clone()))
        } else {
            Err(JwtError::WrongAudience)
        }
    }
}

fn check_id(value: &str, reason: &'static str) -> Result<(), JwtError> {
    if value.is_empty() || value.len() > MAX_ID_LEN {
        return Err(JwtError::InvalidClaims(reason));
    }
    Ok(())
}

/// Maps crate errors to ours without keeping any of their text.
fn map_decode_error(token: &str, kind: &ErrorKind) -> JwtError {
    match kind {
        ErrorKind::InvalidSignature => JwtError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::InvalidKeyFormat => JwtError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => JwtError::Expired,
        ErrorKind::ImmatureSignature => JwtError::NotYetValid,
        ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
        ErrorKind::InvalidAudience => JwtError::WrongAudience,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
            JwtError::InvalidClaims("missing or mistyped registered claim")
        }
        ErrorKind::InvalidSubject => JwtError::InvalidClaims("unexpected sub"),
        // JSON errors come from the header or the claims; only the latter is a claims problem.
        // The header is JSON-decoded before the signature check, the claims only after it.
        ErrorKind::Json(_) if jsonwebtoken::decode_header(token).is_ok() => {
            JwtError::InvalidClaims("missing or mistyped claim")
        }
        _ => JwtError::Malformed,
    }
}

mod secret;
#[cfg(test)]
mod tests;

pub use secret::{JwtSecret, JwtSecretError};
