//! Hand-built JWTs for tests that attack the verifier: any header, claims or encoding can be
//! produced, MAC'd independently of the `jsonwebtoken` crate under test.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// The HMAC-SHA2 family of JWT algorithms (`HS256`, `HS384`, `HS512`).
#[derive(Clone, Copy, Debug)]
pub enum Hs {
    S256,
    S384,
    S512,
}

/// Base64url without padding, as JWT segments are written.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The MAC of `input` under `key` with `alg`.
pub fn mac(input: &[u8], key: &[u8], alg: Hs) -> Vec<u8> {
    fn with<M: Mac + hmac::digest::KeyInit>(input: &[u8], key: &[u8]) -> Vec<u8> {
        let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
        m.update(input);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        Hs::S256 => with::<Hmac<Sha256>>(input, key),
        Hs::S384 => with::<Hmac<Sha384>>(input, key),
        Hs::S512 => with::<Hmac<Sha512>>(input, key),
    }
}

/// A compact token from raw header and claims JSON text, MAC'd with `key` (so duplicate keys,
/// huge numbers and other inputs a `Value` cannot hold are possible).
pub fn forge_raw(header: &str, claims: &str, key: &[u8], alg: Hs) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let signature = mac(signing_input.as_bytes(), key, alg);
    format!("{signing_input}.{}", b64(signature))
}

/// [`forge_raw`] from JSON values.
pub fn forge(header: &Value, claims: &Value, key: &[u8], alg: Hs) -> String {
    forge_raw(&header.to_string(), &claims.to_string(), key, alg)
}

/// `claims` with `key` set to `value`.
pub fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

/// `claims` without `key`.
pub fn without(mut claims: Value, key: &str) -> Value {
    claims
        .as_object_mut()
        .expect("claims are a JSON object")
        .remove(key);
    claims
}

/// One base64url JSON segment of a token, decoded.
pub fn decode_segment(segment: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url JWT segment");
    serde_json::from_slice(&bytes).expect("JSON JWT segment")
}

/// A JWT's claims, read without verification.
pub fn unverified_claims(jwt: &str) -> Value {
    decode_segment(jwt.split('.').nth(1).expect("payload segment"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_forged_token_carries_its_claims_and_an_hs256_mac_over_both_segments() {
        let (header, claims) = (json!({"alg": "HS256"}), json!({"sub": "1"}));
        let token = forge(&header, &claims, b"key", Hs::S256);
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(decode_segment(segments[0]), header);
        assert_eq!(unverified_claims(&token), claims);
        let signing_input = format!("{}.{}", segments[0], segments[1]);
        assert_eq!(
            segments[2],
            b64(mac(signing_input.as_bytes(), b"key", Hs::S256))
        );
        assert_eq!(mac(b"x", b"key", Hs::S512).len(), 64);
    }
}
