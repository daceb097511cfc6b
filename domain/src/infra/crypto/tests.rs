//! T36, crypto half: format, nonce freshness, AAD binding, tamper detection, rotation, key loading.

use super::*;
use base64::engine::general_purpose::STANDARD;

const PLAINTEXT: &str = "patreon-access-token-0123456789abcdef";

fn kid(s: &str) -> KeyId {
    KeyId::parse(s).unwrap()
}

fn key_b64(byte: u8) -> SecretString {
    SecretString::from(STANDARD.encode([byte; KEY_LEN]))
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

fn cipher() -> TokenCipher {
    TokenCipher::new(kid("k2"), &key_b64(2), vec![(kid("k1"), key_b64(1))]).unwrap()
}

fn aad() -> String {
    token_aad("12345", "access_token")
}

/// Splits a value produced by `encrypt` into (kid, nonce bytes, ciphertext bytes).
fn split(stored: &str) -> (String, Vec<u8>, Vec<u8>) {
    let parts: Vec<&str> = stored.split(':').collect();
    assert_eq!(parts.len(), 4);
    (
        parts[1].to_owned(),
        URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
        URL_SAFE_NO_PAD.decode(parts[3]).unwrap(),
    )
}

fn join(kid: &str, nonce: &[u8], ciphertext: &[u8]) -> String {
    format!(
        "v1:{kid}:{}:{}",
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(ciphertext)
    )
}

#[test]
fn token_aad_format() {
    assert_eq!(
        token_aad("12345", "access_token"),
        "patreon-user:12345:access_token"
    );
}

#[test]
fn roundtrip() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    assert_eq!(
        c.decrypt(&stored, &aad()).unwrap().expose_secret(),
        PLAINTEXT
    );
    // Empty and non-ASCII plaintexts too.
    for p in ["", "jeton-é-🔑"] {
        let stored = c.encrypt(&secret(p), &aad()).unwrap();
        assert_eq!(c.decrypt(&stored, &aad()).unwrap().expose_secret(), p);
    }
}

#[test]
fn same_plaintext_twice_differs() {
    let c = cipher();
    let a = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let b = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    assert_ne!(a, b);
    assert_ne!(split(&a).1, split(&b).1, "nonces must differ");
}

#[test]
fn output_format_and_no_plaintext_leak() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    assert!(stored.starts_with("v1:k2:"), "{stored}");
    let (k, nonce, ct) = split(&stored);
    assert_eq!(k, "k2");
    assert_eq!(nonce.len(), NONCE_LEN);
    assert_eq!(ct.len(), PLAINTEXT.len() + TAG_LEN);
    let hex: String = PLAINTEXT.bytes().map(|b| format!("{b:02x}")).collect();
    let lower = stored.to_lowercase();
    for needle in [
        PLAINTEXT.to_owned(),
        STANDARD.encode(PLAINTEXT),
        URL_SAFE_NO_PAD.encode(PLAINTEXT),
        hex.clone(),
    ] {
        assert!(!stored.contains(&needle), "leaks {needle}");
    }
    assert!(!lower.contains(&hex));
    // A distinctive infix must not leak either (base64 of a substring at any alignment).
    assert!(!stored.contains("token-0123"));
}

#[test]
fn ciphertext_moved_to_other_row_or_column_fails() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    for other in [
        token_aad("12346", "access_token"),
        token_aad("12345", "refresh_token"),
        token_aad("1234", "5:access_token"),
        String::new(),
    ] {
        assert_eq!(
            c.decrypt(&stored, &other).unwrap_err(),
            CryptoError::DecryptionFailed
        );
    }
}

#[test]
fn every_single_bit_flip_of_ciphertext_or_nonce_fails() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let (k, nonce, ct) = split(&stored);
    let mut checked = 0;
    for i in 0..ct.len() * 8 {
        let mut bad = ct.clone();
        bad[i / 8] ^= 1 << (i % 8);
        let r = c.decrypt(&join(&k, &nonce, &bad), &aad());
        assert_eq!(r.unwrap_err(), CryptoError::DecryptionFailed, "ct bit {i}");
        checked += 1;
    }
    for i in 0..nonce.len() * 8 {
        let mut bad = nonce.clone();
        bad[i / 8] ^= 1 << (i % 8);
        let r = c.decrypt(&join(&k, &bad, &ct), &aad());
        assert_eq!(
            r.unwrap_err(),
            CryptoError::DecryptionFailed,
            "nonce bit {i}"
        );
        checked += 1;
    }
    assert_eq!(checked, (ct.len() + NONCE_LEN) * 8);
    // Sanity: the unmodified parts still decrypt after re-encoding.
    assert!(c.decrypt(&join(&k, &nonce, &ct), &aad()).is_ok());
}

#[test]
fn every_single_bit_flip_of_stored_string_fails() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let bytes = stored.as_bytes();
    for i in 0..bytes.len() * 8 {
        let mut bad = bytes.to_vec();
        bad[i / 8] ^= 1 << (i % 8);
        let bad = String::from_utf8_lossy(&bad);
        assert!(c.decrypt(&bad, &aad()).is_err(), "bit {i}: {bad}");
    }
}

#[test]
fn unknown_key_id_fails() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let (_, nonce, ct) = split(&stored);
    assert_eq!(
        c.decrypt(&join("k9", &nonce, &ct), &aad()).unwrap_err(),
        CryptoError::UnknownKeyId("k9".into())
    );
    // Relabelled with the other known key id: that key cannot authenticate it.
    assert_eq!(
        c.decrypt(&join("k1", &nonce, &ct), &aad()).unwrap_err(),
        CryptoError::DecryptionFailed
    );
    // A keyring without k2 cannot decrypt k2's values.
    let other = TokenCipher::new(kid("k3"), &key_b64(3), vec![(kid("k1"), key_b64(1))]).unwrap();
    assert_eq!(
        other.decrypt(&stored, &aad()).unwrap_err(),
        CryptoError::UnknownKeyId("k2".into())
    );
}

#[test]
fn rotation_old_key_decrypts_and_needs_reencryption() {
    let old = TokenCipher::new(kid("k1"), &key_b64(1), vec![]).unwrap();
    let stored_old = old.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let c = cipher();
    assert_eq!(
        c.decrypt(&stored_old, &aad()).unwrap().expose_secret(),
        PLAINTEXT
    );
    assert!(c.needs_reencryption(&stored_old));
    let stored_new = c
        .encrypt(&c.decrypt(&stored_old, &aad()).unwrap(), &aad())
        .unwrap();
    assert!(!c.needs_reencryption(&stored_new));
    assert!(stored_new.starts_with("v1:k2:"));
    assert_eq!(c.current_key_id().as_str(), "k2");
    // Malformed values are reported as needing work, so the job surfaces them.
    assert!(c.needs_reencryption(""));
    assert!(c.needs_reencryption("v1:k2:x:y"));
}

#[test]
fn keys_with_wrong_length_or_encoding_are_rejected() {
    let id = || kid("k1");
    for (key, expected) in [
        (
            STANDARD.encode([7u8; 31]),
            CryptoError::KeyLength("k1".into()),
        ),
        (
            STANDARD.encode([7u8; 33]),
            CryptoError::KeyLength("k1".into()),
        ),
        (
            STANDARD.encode([7u8; 16]),
            CryptoError::KeyLength("k1".into()),
        ),
        (String::new(), CryptoError::KeyLength("k1".into())),
        ("not base64!!".into(), CryptoError::KeyEncoding("k1".into())),
        (
            URL_SAFE_NO_PAD.encode([0xfbu8; 32]),
            CryptoError::KeyEncoding("k1".into()),
        ),
        ("A".repeat(43) + "==", CryptoError::KeyEncoding("k1".into())),
    ] {
        let err = TokenCipher::new(id(), &secret(&key), vec![]).unwrap_err();
        assert_eq!(err, expected, "key {key:?}");
        // Old keys go through the same checks.
        let err = TokenCipher::new(kid("k0"), &key_b64(0), vec![(id(), secret(&key))]);
        assert_eq!(err.unwrap_err(), expected);
    }
    // Padded and unpadded forms of a valid key are both accepted.
    let padded = STANDARD.encode([9u8; 32]);
    assert!(padded.ends_with('='));
    assert!(TokenCipher::new(id(), &secret(&padded), vec![]).is_ok());
    let unpadded = padded.trim_end_matches('=');
    assert!(TokenCipher::new(id(), &secret(unpadded), vec![]).is_ok());
}

#[test]
fn duplicate_key_ids_are_rejected() {
    let err = TokenCipher::new(kid("k1"), &key_b64(1), vec![(kid("k1"), key_b64(2))]);
    assert_eq!(err.unwrap_err(), CryptoError::DuplicateKeyId("k1".into()));
    let err = TokenCipher::new(
        kid("k3"),
        &key_b64(3),
        vec![(kid("k1"), key_b64(1)), (kid("k1"), key_b64(2))],
    );
    assert_eq!(err.unwrap_err(), CryptoError::DuplicateKeyId("k1".into()));
}

#[test]
fn key_id_rules() {
    for ok in ["a", "K-1_x", &"z".repeat(32)] {
        assert!(KeyId::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["", "a:b", "a b", "é", "a=b", "a.b", &"z".repeat(33)] {
        assert_eq!(KeyId::parse(bad).unwrap_err(), CryptoError::InvalidKeyId);
    }
}

#[test]
fn parse_old_keys_cases() {
    assert!(TokenCipher::parse_old_keys(&secret("")).unwrap().is_empty());
    assert!(
        TokenCipher::parse_old_keys(&secret("  "))
            .unwrap()
            .is_empty()
    );
    let k1 = STANDARD.encode([1u8; 32]);
    let k2 = STANDARD.encode([2u8; 32]);
    let list = format!("k1={k1}, k2 = {k2} ");
    let parsed = TokenCipher::parse_old_keys(&secret(&list)).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].0.as_str(), "k1");
    assert_eq!(parsed[0].1.expose_secret(), k1);
    assert_eq!(parsed[1].0.as_str(), "k2");
    assert_eq!(parsed[1].1.expose_secret(), k2);
    let c = TokenCipher::new(kid("k3"), &key_b64(3), parsed).unwrap();
    assert_eq!(format!("{c:?}").matches("k1").count(), 1);

    for bad in [
        k1.clone(),          // key without id: splits inside the padding -> bad id
        format!("k1={k1},"), // trailing comma
        format!("k1={k1},,k2={k2}"),
        "k1=".to_owned(),
        format!("={k1}"),
        format!("k:1={k1}"),
    ] {
        let err = TokenCipher::parse_old_keys(&secret(&bad)).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::MalformedKeyList | CryptoError::InvalidKeyId
            ),
            "{bad}: {err:?}"
        );
        assert!(
            !err.to_string().contains(&k1[..8]),
            "error leaks key: {err}"
        );
    }
}

#[test]
fn malformed_stored_values_are_rejected_without_panic() {
    let c = cipher();
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let (_, nonce, ct) = split(&stored);
    let n = URL_SAFE_NO_PAD.encode(&nonce);
    let t = URL_SAFE_NO_PAD.encode(&ct);
    let cases = [
        String::new(),
        ":".into(),
        ":::".into(),
        "v1".into(),
        "v1:k2".into(),
        format!("v1:k2:{n}"),
        format!("v1:k2:{n}:"),
        format!("v1:k2::{t}"),
        format!("v2:k2:{n}:{t}"),
        format!("V1:k2:{n}:{t}"),
        format!(" v1:k2:{n}:{t}"),
        format!("v1:k2:{n}:{t} "),
        format!("v1:k2:{n}:{t}:"),
        format!("v1:k2:{n}:{t}:extra"),
        format!("v1::{n}:{t}"),
        format!("v1:k 2:{n}:{t}"),
        format!("v1:k2:{n}=:{t}"),
        format!("v1:k2:{n}:{t}="),
        // Standard-alphabet characters (`+`, `/`) are not base64url.
        format!("v1:k2:+{}:{t}", &n[1..]),
        format!("v1:k2:/{}:{t}", &n[1..]),
        format!("v1:k2:{n}:{}", STANDARD.encode(&ct)),
        format!("v1:k2:{n}:!{}", &t[1..]),
        format!("v1:k2:{}:{t}", URL_SAFE_NO_PAD.encode(&nonce[..11])),
        format!("v1:k2:{}:{t}", URL_SAFE_NO_PAD.encode([0u8; 16])),
        format!("v1:k2:{n}:{}", URL_SAFE_NO_PAD.encode(&ct[..TAG_LEN - 1])),
        "v1:k2:\u{0}:\u{0}".into(),
        "v1:k2:é:é".into(),
        format!("v1:{}:{n}:{t}", "k".repeat(33)),
        "x".repeat(100_000),
    ];
    for case in &cases {
        let err = c.decrypt(case, &aad()).unwrap_err();
        assert!(
            matches!(
                err,
                CryptoError::MalformedCiphertext | CryptoError::DecryptionFailed
            ),
            "{case:?} -> {err:?}"
        );
        assert!(c.needs_reencryption(case));
    }
    // A bare tag (empty plaintext) is well-formed but still has to authenticate.
    let forged = join("k2", &nonce, &[0u8; TAG_LEN]);
    assert_eq!(
        c.decrypt(&forged, &aad()).unwrap_err(),
        CryptoError::DecryptionFailed
    );
}

#[test]
fn debug_and_errors_show_no_key_material() {
    let raw = [0xabu8; KEY_LEN];
    let b64 = STANDARD.encode(raw);
    let c = TokenCipher::new(kid("cur"), &secret(&b64), vec![(kid("old"), key_b64(0xcd))]).unwrap();
    let dbg = format!("{c:?}");
    assert!(dbg.contains("cur") && dbg.contains("old"), "{dbg}");
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    for needle in [&b64[..10], &hex[..8], "171", "0xab", "ab, ab", "[171"] {
        assert!(!dbg.contains(needle), "{dbg} contains {needle}");
    }
    // Key-loading errors name the key id only.
    let err = TokenCipher::new(kid("k1"), &secret("QUJD!"), vec![]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("k1") && !msg.contains("QUJD") && !msg.contains('!'),
        "{msg}"
    );
    // Decryption errors never contain the plaintext.
    let stored = c.encrypt(&secret(PLAINTEXT), &aad()).unwrap();
    let err = c.decrypt(&stored, "other").unwrap_err();
    assert!(!format!("{err} {err:?}").contains(PLAINTEXT));
}
