//! `JWT_SECRET` validation: long enough and not a placeholder.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

const MIN_SECRET_LEN: usize = 32;
/// Compared case-insensitively after trimming. Values containing "change me" spellings are also
/// refused (see [`JwtSecret::parse`]).
const PLACEHOLDERS: &[&str] = &[
    "secret",
    "changeme",
    "change-me",
    "your-secret-key",
    "jwt-secret",
    "please-change-me",
    "change_me_to_at_least_32_random_bytes_0000",
];
const CHANGE_ME_SPELLINGS: &[&str] = &["changeme", "change-me", "change_me"];

/// `JWT_SECRET`: at least 32 bytes, not a placeholder. HMAC uses its UTF-8 bytes as given, as
/// PyJWT does with a `str` key (no base64 decoding, no trimming).
#[derive(Clone)]
pub struct JwtSecret(SecretString);

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret([REDACTED])")
    }
}

/// Why a `JWT_SECRET` value was refused. Messages never contain the value (nor its length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtSecretError {
    /// Empty. (An unset variable is the config loader's error, before this is called.)
    #[error("it is empty; set it to at least 32 random bytes")]
    Empty,
    #[error("it is too short; use at least 32 random bytes")]
    TooShort,
    #[error("it is a placeholder value; generate at least 32 random bytes")]
    Placeholder,
    #[error("it is a single repeated character; generate at least 32 random bytes")]
    RepeatedCharacter,
}

impl JwtSecret {
    /// Refuses empty values, values under 32 bytes, known placeholders (case-insensitive) and
    /// values made of a single repeated character. Checks run from most to least specific so the
    /// operator gets the most useful message.
    pub fn parse(value: SecretString) -> Result<JwtSecret, JwtSecretError> {
        let raw = value.expose_secret();
        if raw.is_empty() {
            return Err(JwtSecretError::Empty);
        }
        let normalized = raw.trim().to_ascii_lowercase();
        if PLACEHOLDERS.contains(&normalized.as_str())
            || CHANGE_ME_SPELLINGS.iter().any(|p| normalized.contains(p))
        {
            return Err(JwtSecretError::Placeholder);
        }
        let mut chars = raw.chars();
        if let Some(first) = chars.next()
            && chars.all(|c| c == first)
        {
            return Err(JwtSecretError::RepeatedCharacter);
        }
        if raw.len() < MIN_SECRET_LEN {
            return Err(JwtSecretError::TooShort);
        }
        Ok(JwtSecret(value))
    }

    pub(super) fn as_bytes(&self) -> &[u8] {
        self.0.expose_secret().as_bytes()
    }
}
