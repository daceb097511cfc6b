//! Patreon tokens encrypted at rest (docs/security-checklist.md §5, T36).
//!
//! Stored form: `v1:<key_id>:<nonce>:<ciphertext+tag>`, AES-256-GCM with a fresh random 96-bit nonce
//! per encryption and an AAD naming the row and column ([`token_aad`]), so a ciphertext copied to
//! another row or column fails to decrypt. Key rotation: one current key encrypts, old keys only
//! decrypt until a re-encryption job has moved every row ([`TokenCipher::needs_reencryption`]).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};

/// Version tag of the stored format; bump it if the layout or algorithm ever changes.
const FORMAT_VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const MAX_KEY_ID_LEN: usize = 32;

/// Standard-alphabet base64 for keys, padding optional: operators paste keys from `openssl rand
/// -base64 32` (padded) or from tools that strip the `=`.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Errors from key loading, encryption and decryption.
///
/// Messages carry at most a key id (never secret), never key bytes, base64 fragments or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Not `[A-Za-z0-9_-]{1,32}`. The offending text is not echoed: it may be a pasted key.
    #[error("invalid key id (expected 1-32 characters of [A-Za-z0-9_-])")]
    InvalidKeyId,
    /// The same key id appears twice in the keyring.
    #[error("duplicate key id `{0}` in the token encryption keyring")]
    DuplicateKeyId(String),
    /// The old-key list is not `kid=base64key[,kid=base64key...]`.
    #[error("malformed old-key list (expected `kid=base64key,kid2=base64key`)")]
    MalformedKeyList,
    /// A key is not valid standard base64.
    #[error("key `{0}` is not valid standard base64")]
    KeyEncoding(String),
    /// A key does not decode to exactly 32 bytes.
    #[error("key `{0}` must decode to exactly 32 bytes")]
    KeyLength(String),
    /// The stored value is not `v1:<kid>:<nonce>:<ciphertext>`.
    #[error("malformed encrypted value")]
    MalformedCiphertext,
    /// The stored value names a key id that is not in the keyring.
    #[error("encrypted value uses unknown key id `{0}`")]
    UnknownKeyId(String),
    /// Authentication failed: wrong key, wrong AAD, or tampered data.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The AEAD refused to encrypt (only possible for plaintexts of tens of GiB).
    #[error("encryption failed")]
    EncryptionFailed,
}

/// Identifier of an encryption key, stored in clear in every ciphertext: `[A-Za-z0-9_-]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Validates a key id; the charset keeps it free of the `:` separator of the stored format.
    pub fn parse(s: &str) -> Result<KeyId, CryptoError> {
        let valid = !s.is_empty()
            && s.len() <= MAX_KEY_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(KeyId(s.to_owned()))
        } else {
            Err(CryptoError::InvalidKeyId)
        }
    }

    /// The key id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// AES-256-GCM keyring: the current key encrypts, old keys only decrypt.
///
/// `Debug` shows key ids only. Keys live only as expanded AES key schedules inside [`Aes256Gcm`]
/// (enable aes-gcm's `zeroize` feature to also wipe those on drop); decoded key bytes are zeroized.
pub struct TokenCipher {
    current: KeyId,
    /// Current key first, then old keys in configuration order. A handful of entries: a linear
    /// scan is simpler than a map and just as fast.
    keys: Vec<(KeyId, Aes256Gcm)>,
}

impl fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let old: Vec<&str> = self
            .keys
            .iter()
            .skip(1)
            .map(|(id, _)| id.as_str())
            .collect();
        f.debug_struct("TokenCipher")
            .field("current_key_id", &self.current.as_str())
            .field("old_key_ids", &old)
            .finish_non_exhaustive()
    }
}

/// A decoded stored value.
struct Parsed {
    kid: KeyId,
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
}

impl TokenCipher {
    /// Builds the keyring.
    ///
    /// `current_key_b64` and each old key: standard base64 (with or without padding) of exactly
    /// 32 bytes. A key id used twice (current vs old, or among old keys) is an error, since a
    /// ciphertext's key id must name exactly one key.
    pub fn new(
        current_id: KeyId,
        current_key_b64: &SecretString,
        old_keys: Vec<(KeyId, SecretString)>,
    ) -> Result<Self, CryptoError> {
        let mut keys = Vec::with_capacity(old_keys.len() + 1);
        keys.push((current_id.clone(), load_key(&current_id, current_key_b64)?));
        for (id, key_b64) in old_keys {
            if keys.iter().any(|(existing, _)| *existing == id) {
                return Err(CryptoError::DuplicateKeyId(id.0));
            }
            let cipher = load_key(&id, &key_b64)?;
            keys.push((id, cipher));
        }
        Ok(TokenCipher {
            current: current_id,
            keys,
        })
    }

    /// Parses `TOKEN_ENCRYPTION_OLD_KEYS`: `"kid=base64key,kid2=base64key"` (blank -> empty list).
    ///
    /// Whitespace around entries, ids and keys is ignored. Only the shape and the key ids are
    /// checked here; [`TokenCipher::new`] validates the keys themselves.
    pub fn parse_old_keys(s: &SecretString) -> Result<Vec<(KeyId, SecretString)>, CryptoError> {
        let s = s.expose_secret();
        if s.trim().is_empty() {
            return Ok(Vec::new());
        }
        s.split(',')
            .map(|entry| {
                // Split at the first `=`: base64 padding can only appear in the key part.
                let (id, key) = entry.split_once('=').ok_or(CryptoError::MalformedKeyList)?;
                let key = key.trim();
                if key.is_empty() {
                    return Err(CryptoError::MalformedKeyList);
                }
                Ok((KeyId::parse(id.trim())?, SecretString::from(key.to_owned())))
            })
            .collect()
    }

    /// Encrypts under the current key.
    ///
    /// Returns `"v1:<kid>:<nonce b64url-nopad>:<ciphertext+tag b64url-nopad>"` with a fresh random
    /// 96-bit nonce each call. `aad` should come from [`token_aad`].
    ///
    /// Fallible only because the AEAD API is (plaintexts over ~64 GiB); returns a `Result` rather
    /// than hiding a panic path.
    pub fn encrypt(&self, plaintext: &SecretString, aad: &str) -> Result<String, CryptoError> {
        let cipher = self
            .cipher(&self.current)
            .ok_or(CryptoError::EncryptionFailed)?;
        // ThreadRng is a CSPRNG seeded from the OS; random nonces are safe far below 2^32
        // encryptions per key, and rotation resets the count.
        let nonce: [u8; NONCE_LEN] = rand::random();
        let payload = Payload {
            msg: plaintext.expose_secret().as_bytes(),
            aad: aad.as_bytes(),
        };
        let ciphertext = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| CryptoError::EncryptionFailed)?;
        Ok(format!(
            "{FORMAT_VERSION}:{}:{}:{}",
            self.current,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        ))
    }

    /// Decrypts a value produced by [`TokenCipher::encrypt`] with the same `aad`, under the
    /// current key or any old key.
    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<SecretString, CryptoError> {
        let parsed = parse_stored(stored)?;
        let cipher = self
            .cipher(&parsed.kid)
            .ok_or_else(|| CryptoError::UnknownKeyId(parsed.kid.0.clone()))?;
        let payload = Payload {
            msg: &parsed.ciphertext,
            aad: aad.as_bytes(),
        };
        // `Aead::decrypt` returns a fresh buffer only on success; on failure we get nothing to
        // read (RUSTSEC-2023-0096 concerned in-place buffers; aes-gcm >= 0.10.3 regardless).
        let plaintext = cipher
            .decrypt(Nonce::from_slice(&parsed.nonce), payload)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        match String::from_utf8(plaintext) {
            Ok(text) => Ok(SecretString::from(text)),
            Err(err) => {
                // Authentic but not UTF-8: not something we wrote. Wipe before dropping.
                err.into_bytes().zeroize();
                Err(CryptoError::DecryptionFailed)
            }
        }
    }

    /// True when `stored` was not encrypted under the current key, so rotation should re-encrypt
    /// it. Malformed values also return true so the re-encryption job surfaces them (its
    /// `decrypt` then fails) instead of silently skipping them.
    pub fn needs_reencryption(&self, stored: &str) -> bool {
        !matches!(parse_stored(stored), Ok(parsed) if parsed.kid == self.current)
    }

    /// The id of the key used by [`TokenCipher::encrypt`].
    pub fn current_key_id(&self) -> &KeyId {
        &self.current
    }

    fn cipher(&self, id: &KeyId) -> Option<&Aes256Gcm> {
        self.keys
            .iter()
            .find_map(|(kid, cipher)| (kid == id).then_some(cipher))
    }
}

/// AAD binding a ciphertext to its row and column:
/// `token_aad("12345", "access_token") == "patreon-user:12345:access_token"`.
///
/// Column names are fixed identifiers without `:`, so the user id / column split is unambiguous.
pub fn token_aad(patreon_user_id: &str, column: &str) -> String {
    format!("patreon-user:{patreon_user_id}:{column}")
}

/// Decodes one configured key. Base64 errors are not propagated: their text names the offending
/// symbol, which is key material.
fn load_key(id: &KeyId, key_b64: &SecretString) -> Result<Aes256Gcm, CryptoError> {
    let bytes = Zeroizing::new(
        KEY_ENGINE
            .decode(key_b64.expose_secret().trim())
            .map_err(|_| CryptoError::KeyEncoding(id.0.clone()))?,
    );
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::KeyLength(id.0.clone()));
    }
    Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::KeyLength(id.0.clone()))
}

/// Splits and decodes `v1:<kid>:<nonce>:<ciphertext>`; every shape error is `MalformedCiphertext`.
fn parse_stored(stored: &str) -> Result<Parsed, CryptoError> {
    let mut parts = stored.split(':');
    let (Some(version), Some(kid), Some(nonce), Some(ciphertext), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(CryptoError::MalformedCiphertext);
    };
    if version != FORMAT_VERSION {
        return Err(CryptoError::MalformedCiphertext);
    }
    let kid = KeyId::parse(kid).map_err(|_| CryptoError::MalformedCiphertext)?;
    // URL_SAFE_NO_PAD rejects padding and non-canonical trailing bits, so each stored value has
    // exactly one accepted spelling.
    let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
        .decode(nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(CryptoError::MalformedCiphertext)?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(ciphertext)
        .map_err(|_| CryptoError::MalformedCiphertext)?;
    if ciphertext.len() < TAG_LEN {
        return Err(CryptoError::MalformedCiphertext);
    }
    Ok(Parsed {
        kid,
        nonce,
        ciphertext,
    })
}

#[cfg(test)]
mod tests;
