//! T01–T12 and issuance tests. Tokens are forged with `test_support::jwt::forge`, which builds
//! arbitrary header and claims JSON and MACs it independently of jsonwebtoken.
//!
//! The crate checks `exp`/`nbf` against the system clock as well as our `now`, so time-sensitive
//! tests use the real current time; the ±10 s margins absorb the test's own runtime.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::jwt::{Hs, b64, decode_segment, forge, forge_raw, mac, with, without};

const SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";
const ISSUER: &str = "https://gate.example.org";
const AUDIENCE: &str = "patreon-gate-api";
const USER: &str = "12345";
const SID: &str = "sess-1";

/// Forged with our secret and HS256: only the header/claims under test differ from a good token.
fn sign(header: &Value, claims: &Value) -> String {
    forge(header, claims, SECRET.as_bytes(), Hs::S256)
}

fn header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt"})
}

fn claims(now: i64) -> Value {
    json!({
        "user_id": USER, "sub": USER, "sid": SID, "jti": "0123456789abcdef0123456789abcdef",
        "iat": now, "exp": now + 600, "iss": ISSUER,
    })
}

fn settings(audience: Option<&str>) -> JwtSettings {
    JwtSettings {
        secret: JwtSecret::parse(SecretString::from(SECRET)).unwrap(),
        issuer: ISSUER.into(),
        audience: audience.map(Into::into),
        access_ttl: Duration::minutes(15),
        max_session_age: Duration::days(30),
    }
}

fn keys() -> JwtKeys {
    JwtKeys::new(&settings(None))
}

fn keys_aud() -> JwtKeys {
    JwtKeys::new(&settings(Some(AUDIENCE)))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn ts() -> i64 {
    now().timestamp()
}

fn verify(token: &str) -> Result<AccessClaims, JwtError> {
    keys().verify(token, now())
}

fn segments(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

// ---------------------------------------------------------------- issuance and roundtrip

#[test]
fn forged_good_token_verifies() {
    // Guards every negative test below: the forging helper itself produces valid tokens.
    let t = ts();
    let got = verify(&sign(&header(), &claims(t))).unwrap();
    assert_eq!(got.sub, USER);
    assert_eq!(got.user_id, USER);
    assert_eq!(got.sid, SID);
    assert_eq!(got.aud, None);
    let got = keys_aud()
        .verify(
            &sign(&header(), &with(claims(t), "aud", json!(AUDIENCE))),
            now(),
        )
        .unwrap();
    assert_eq!(got.aud.as_deref(), Some(AUDIENCE));
}

#[test]
fn roundtrip() {
    let k = keys();
    let n = now();
    let (token, issued) = k.issue(USER, SID, n + Duration::days(1), n).unwrap();
    let verified = k.verify(&token, n).unwrap();
    assert_eq!(issued, verified);
    assert_eq!(verified.user_id, USER);
    assert_eq!(verified.sub, USER);
    assert_eq!(verified.sid, SID);
    assert_eq!(verified.iss, ISSUER);
    assert_eq!(verified.iat, n.timestamp());
    assert_eq!(verified.exp, (n + Duration::minutes(15)).timestamp());
    assert_eq!(verified.aud, None);

    let k = keys_aud();
    let (token, issued) = k.issue(USER, SID, n + Duration::days(1), n).unwrap();
    assert_eq!(issued.aud.as_deref(), Some(AUDIENCE));
    assert_eq!(k.verify(&token, n).unwrap(), issued);
    // A token for the audience-configured deployment is refused by one without audience.
    assert_eq!(keys().verify(&token, n), Err(JwtError::WrongAudience));
}

#[test]
fn issued_token_has_pyjwt_compatible_shape() {
    // C1 in Rust: what `jwt.decode(token, JWT_SECRET, algorithms=["HS256"])` relies on.
    let n = now();
    let (token, _) = keys().issue(USER, SID, n + Duration::days(1), n).unwrap();
    let parts = segments(&token);
    assert_eq!(parts.len(), 3);
    assert!(!token.contains('='));
    assert_eq!(
        decode_segment(&parts[0]),
        json!({"alg": "HS256", "typ": "at+jwt"})
    );
    let payload = decode_segment(&parts[1]);
    let obj = payload.as_object().unwrap();
    let mut names: Vec<&str> = obj.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["exp", "iat", "iss", "jti", "sid", "sub", "user_id"]);
    for s in ["sub", "jti", "iss", "user_id", "sid"] {
        assert!(obj[s].is_string(), "{s}");
    }
    assert!(obj["exp"].is_i64() && obj["iat"].is_i64());
    // HMAC-SHA256 over the signing input with the secret's UTF-8 bytes, as PyJWT computes it.
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let expected = mac(signing_input.as_bytes(), SECRET.as_bytes(), Hs::S256);
    assert_eq!(URL_SAFE_NO_PAD.decode(&parts[2]).unwrap(), expected);
    // With an audience configured, `aud` is a plain string.
    let (token, _) = keys_aud()
        .issue(USER, SID, n + Duration::days(1), n)
        .unwrap();
    assert_eq!(decode_segment(&segments(&token)[1])["aud"], json!(AUDIENCE));
}

#[test]
fn issue_caps_exp_at_session_expiry() {
    let k = keys();
    let n = now();
    let session_end = n + Duration::minutes(3);
    let (token, c) = k.issue(USER, SID, session_end, n).unwrap();
    assert_eq!(c.exp, session_end.timestamp());
    assert_eq!(k.verify(&token, n).unwrap().exp, session_end.timestamp());
    // Session far away: the access TTL applies.
    let (_, c) = k.issue(USER, SID, n + Duration::days(7), n).unwrap();
    assert_eq!(c.exp, n.timestamp() + 15 * 60);
    // Session already over, or ending this second: nothing is issued.
    assert_eq!(k.issue(USER, SID, n, n).unwrap_err(), JwtError::Expired);
    assert_eq!(
        k.issue(USER, SID, n - Duration::seconds(1), n).unwrap_err(),
        JwtError::Expired
    );
    // An overflowing TTL falls back to the session end instead of panicking.
    let mut s = settings(None);
    s.access_ttl = Duration::MAX;
    let (_, c) = JwtKeys::new(&s).issue(USER, SID, session_end, n).unwrap();
    assert_eq!(c.exp, session_end.timestamp());
}

#[test]
fn issue_uses_fresh_128_bit_jti_and_refuses_bad_ids() {
    let k = keys();
    let n = now();
    let end = n + Duration::days(1);
    let (_, a) = k.issue(USER, SID, end, n).unwrap();
    let (_, b) = k.issue(USER, SID, end, n).unwrap();
    assert_ne!(a.jti, b.jti);
    assert_eq!(a.jti.len(), 32);
    assert!(a.jti.bytes().all(|c| c.is_ascii_hexdigit()));
    for (user, sid) in [
        ("", SID),
        (USER, ""),
        (&*"1".repeat(129), SID),
        (USER, &*"s".repeat(129)),
    ] {
        assert!(matches!(
            k.issue(user, sid, end, n),
            Err(JwtError::InvalidClaims(_))
        ));
    }
}

// ---------------------------------------------------------------- T01–T05: algorithm and signature

#[test]
fn t01_alg_none_in_any_spelling() {
    let t = ts();
    let good = sign(&header(), &claims(t));
    let kept_sig = segments(&good)[2].clone();
    for alg in ["none", "None", "NONE", "nOnE", ""] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        let unsigned = format!("{}.{}.", b64(h.to_string()), b64(claims(t).to_string()));
        let kept = format!("{unsigned}{kept_sig}");
        for token in [unsigned.as_str(), &kept, &sign(&h, &claims(t))] {
            let err = verify(token).unwrap_err();
            assert!(
                matches!(err, JwtError::Malformed | JwtError::WrongAlgorithm),
                "{alg}: {err:?}"
            );
        }
    }
    // No `alg` at all, and `alg: null`.
    for h in [
        json!({"typ": "at+jwt"}),
        json!({"alg": null, "typ": "at+jwt"}),
    ] {
        assert_eq!(verify(&sign(&h, &claims(t))), Err(JwtError::Malformed));
    }
}

#[test]
fn t02_other_algorithms_refused() {
    let t = ts();
    for (alg, hs) in [("HS384", Hs::S384), ("HS512", Hs::S512)] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        let token = forge(&h, &claims(t), SECRET.as_bytes(), hs);
        assert_eq!(verify(&token), Err(JwtError::WrongAlgorithm), "{alg}");
    }
    for alg in ["RS256", "ES256", "EdDSA", "PS256", "ES384", "RS512"] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        // An HS256 MAC (what an attacker could compute) under an asymmetric `alg`.
        let token = sign(&h, &claims(t));
        assert_eq!(verify(&token), Err(JwtError::WrongAlgorithm), "{alg}");
    }
    for alg in ["HS1", "hs256", "HS256 ", "RSA-OAEP", "A256GCM"] {
        let h = json!({"alg": alg, "typ": "at+jwt"});
        assert_eq!(
            verify(&sign(&h, &claims(t))),
            Err(JwtError::Malformed),
            "{alg}"
        );
    }
}

#[test]
fn t03_key_confusion_and_alg_swap() {
    let t = ts();
    // MACed with public-key material as the HMAC key (CVE-2015-9235 shape).
    let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    let token = forge(&header(), &claims(t), pem.as_bytes(), Hs::S256);
    assert_eq!(verify(&token), Err(JwtError::BadSignature));
    // Good token, header switched to HS512 and re-signed with the right secret.
    let h = json!({"alg": "HS512", "typ": "at+jwt"});
    let token = forge(&h, &claims(t), SECRET.as_bytes(), Hs::S512);
    assert_eq!(verify(&token), Err(JwtError::WrongAlgorithm));
    // Header switched to HS384 keeping the HS256 signature.
    let good = segments(&sign(&header(), &claims(t)));
    let h = b64(json!({"alg": "HS384", "typ": "at+jwt"}).to_string());
    let token = format!("{h}.{}.{}", good[1], good[2]);
    assert_eq!(verify(&token), Err(JwtError::WrongAlgorithm));
    // Header changed (alg kept) with the old signature.
    let h = b64(r#"{"typ":"at+jwt","alg":"HS256"}"#);
    let token = format!("{h}.{}.{}", good[1], good[2]);
    assert_eq!(verify(&token), Err(JwtError::BadSignature));
}

#[test]
fn t04_other_secret_refused() {
    let t = ts();
    for key in [
        "another-secret-0123456789-abcdefghijklmnop",
        "test-secret-0123456789-abcdefghijklmnoq",
        "test-secret-0123456789-abcdefghijklmnop\n",
        "",
    ] {
        let token = forge(&header(), &claims(t), key.as_bytes(), Hs::S256);
        assert_eq!(verify(&token), Err(JwtError::BadSignature), "{key:?}");
    }
    // Our own token verified by a deployment with a rotated secret.
    let n = now();
    let (token, _) = keys().issue(USER, SID, n + Duration::days(1), n).unwrap();
    let mut s = settings(None);
    s.secret = JwtSecret::parse(SecretString::from(
        "rotated-secret-0123456789-abcdefghijklm",
    ))
    .unwrap();
    assert_eq!(
        JwtKeys::new(&s).verify(&token, n),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn t05_edited_payload_with_old_signature() {
    let t = ts();
    let good = segments(&sign(&header(), &claims(t)));
    for edited in [
        with(
            with(claims(t), "sub", json!("99999")),
            "user_id",
            json!("99999"),
        ),
        with(claims(t), "membership", json!("patron")),
        with(claims(t), "exp", json!(t + 86_400)),
        without(claims(t), "sid"),
    ] {
        let token = format!("{}.{}.{}", good[0], b64(edited.to_string()), good[2]);
        assert_eq!(verify(&token), Err(JwtError::BadSignature));
    }
}

/// Every single-bit flip of every byte of the compact token must fail. The brief allows one
/// exception: a flip in the unused trailing bits of the last base64url character that decodes to
/// the same bytes (then the token is the same token, and the session check still applies). The
/// crate's decoder is canonical (see the next test), so in practice no flip passes.
#[test]
fn t05_every_single_bit_flip_fails() {
    let k = keys();
    let n = now();
    let (token, _) = k.issue(USER, SID, n + Duration::days(1), n).unwrap();
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone),
    );
    let decoded = |t: &str| -> Option<Vec<Vec<u8>>> {
        t.split('.').map(|s| lenient.decode(s).ok()).collect()
    };
    let original = decoded(&token).unwrap();
    let bytes = token.as_bytes();
    let mut accepted_same_bytes = 0;
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut m = bytes.to_vec();
            m[i] ^= 1 << bit;
            let mutated = String::from_utf8_lossy(&m).into_owned();
            if k.verify(&mutated, n).is_ok() {
                assert_eq!(
                    decoded(&mutated),
                    Some(original.clone()),
                    "byte {i} bit {bit}"
                );
                accepted_same_bytes += 1;
            }
        }
    }
    assert_eq!(accepted_same_bytes, 0);
}

#[test]
fn non_canonical_base64_trailing_bits_are_refused() {
    let n = now();
    let (token, _) = keys().issue(USER, SID, n + Duration::days(1), n).unwrap();
    let parts = segments(&token);
    // A 32-byte MAC is 43 base64url chars; the last carries 4 data bits and 2 unused bits.
    let sig = &parts[2];
    assert_eq!(sig.len(), 43);
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(sig.chars().last().unwrap()).unwrap();
    for unused in 1..4 {
        let ch = alphabet.as_bytes()[last | unused] as char;
        let token = format!("{}.{}.{}{ch}", parts[0], parts[1], &sig[..42]);
        assert_eq!(keys().verify(&token, n), Err(JwtError::Malformed));
    }
}

// ---------------------------------------------------------------- T06–T09: claims

#[test]
fn t06_expiry_skew_and_iat() {
    let t = ts();
    let expired = with(with(claims(t), "exp", json!(t - 40)), "iat", json!(t - 600));
    assert_eq!(verify(&sign(&header(), &expired)), Err(JwtError::Expired));
    let in_leeway = with(with(claims(t), "exp", json!(t - 20)), "iat", json!(t - 600));
    assert!(verify(&sign(&header(), &in_leeway)).is_ok());

    assert_eq!(
        verify(&sign(&header(), &with(claims(t), "nbf", json!(t + 40)))),
        Err(JwtError::NotYetValid)
    );
    assert!(verify(&sign(&header(), &with(claims(t), "nbf", json!(t + 20)))).is_ok());
    assert!(verify(&sign(&header(), &with(claims(t), "nbf", json!(t)))).is_ok());

    assert_eq!(
        verify(&sign(&header(), &with(claims(t), "iat", json!(t + 40)))),
        Err(JwtError::NotYetValid)
    );
    assert!(verify(&sign(&header(), &with(claims(t), "iat", json!(t + 20)))).is_ok());
    let max_age = 30 * 86_400;
    assert_eq!(
        verify(&sign(
            &header(),
            &with(claims(t), "iat", json!(t - max_age - 10))
        )),
        Err(JwtError::Expired)
    );
    assert!(
        verify(&sign(
            &header(),
            &with(claims(t), "iat", json!(t - max_age + 10))
        ))
        .is_ok()
    );
    for iat in [json!(0), json!(-1), json!(i64::MIN), json!(i64::MAX)] {
        assert!(
            verify(&sign(&header(), &with(claims(t), "iat", iat.clone()))).is_err(),
            "{iat}"
        );
    }
}

#[test]
fn t06_pinned_now_is_honoured() {
    // Our own checks use the `now` argument, not only the system clock.
    let k = keys();
    let n = now();
    let (token, _) = k.issue(USER, SID, n + Duration::days(1), n).unwrap();
    assert_eq!(
        k.verify(&token, n + Duration::minutes(16)),
        Err(JwtError::Expired)
    );
    assert_eq!(
        k.verify(&token, n - Duration::minutes(1)),
        Err(JwtError::NotYetValid)
    );
    assert!(
        k.verify(&token, n + Duration::seconds(15 * 60 + 29))
            .is_ok()
    );
}

#[test]
fn t07_required_claims_and_types() {
    let t = ts();
    for name in ["exp", "iss", "sub", "jti", "user_id", "sid", "iat"] {
        let err = verify(&sign(&header(), &without(claims(t), name))).unwrap_err();
        assert!(matches!(err, JwtError::InvalidClaims(_)), "{name}: {err:?}");
    }
    assert_eq!(
        keys_aud()
            .verify(&sign(&header(), &claims(t)), now())
            .unwrap_err(),
        JwtError::InvalidClaims("missing or mistyped registered claim")
    );
    let mismatch = with(claims(t), "user_id", json!("54321"));
    assert_eq!(
        verify(&sign(&header(), &mismatch)),
        Err(JwtError::InvalidClaims("user_id differs from sub"))
    );
    let far = (t + 86_400).to_string();
    let bad_values: Vec<(&str, Value)> = vec![
        ("exp", json!(far)), // CVE-2026-25537: a string exp must not count as absent
        ("nbf", json!(far)), // same for a string nbf (would skip the nbf check)
        ("exp", json!(t as f64 + 600.5)),
        ("exp", json!(-1)),
        ("exp", json!(0)),
        ("exp", Value::Null),
        ("exp", json!(u64::MAX)),
        ("exp", json!(true)),
        ("exp", json!([t + 600])),
        ("nbf", json!(t as f64 + 0.5)),
        ("nbf", json!(-1)),
        ("nbf", Value::Null),
        ("nbf", json!(u64::MAX)),
        ("iat", json!(t.to_string())),
        ("iat", json!(t as f64 + 0.5)),
        ("iat", Value::Null),
        ("sub", json!(12345)),
        ("user_id", json!(12345)),
        ("jti", json!(1)),
        ("sid", json!(null)),
        ("iss", json!([ISSUER])),
        ("iss", json!(null)),
        ("jti", json!("")),
        ("jti", json!("j".repeat(129))),
        ("sid", json!("")),
        ("sid", json!("s".repeat(129))),
    ];
    for (name, value) in bad_values {
        let c = with(claims(t), name, value.clone());
        let c = if name == "sub" || name == "user_id" {
            with(with(c, "sub", value.clone()), "user_id", value.clone())
        } else {
            c
        };
        assert!(verify(&sign(&header(), &c)).is_err(), "{name} = {value}");
    }
    // 128 bytes is still fine.
    let c = with(
        with(claims(t), "jti", json!("j".repeat(128))),
        "sid",
        json!("s".repeat(128)),
    );
    assert!(verify(&sign(&header(), &c)).is_ok());
    // Numbers JSON values cannot represent exactly: 2^64 and beyond, exponent forms.
    let base = claims(t).to_string();
    let exp_text = format!("\"exp\":{}", t + 600);
    for raw in [
        "18446744073709551616",
        "9223372036854775808",
        "1e400",
        "1.8e9",
        "-0",
    ] {
        let c = base.replace(&exp_text, &format!("\"exp\":{raw}"));
        assert_ne!(c, base);
        let token = forge_raw(&header().to_string(), &c, SECRET.as_bytes(), Hs::S256);
        assert!(verify(&token).is_err(), "exp = {raw}");
    }
    // Duplicate keys: a later `sub` must not silently win.
    let dup = base.replacen('{', &format!("{{\"sub\":\"{USER}\","), 1);
    let token = forge_raw(&header().to_string(), &dup, SECRET.as_bytes(), Hs::S256);
    assert!(verify(&token).is_err());
    // Claims that are not a JSON object.
    for raw in ["[]", "null", "\"x\"", "1", ""] {
        let token = forge_raw(&header().to_string(), raw, SECRET.as_bytes(), Hs::S256);
        assert!(verify(&token).is_err(), "{raw}");
    }
}

#[test]
fn t08_issuer_and_audience() {
    let t = ts();
    for iss in [
        "https://staging.gate.example.org",
        "",
        "https://gate.example.org/",
    ] {
        let c = with(claims(t), "iss", json!(iss));
        assert_eq!(
            verify(&sign(&header(), &c)),
            Err(JwtError::WrongIssuer),
            "{iss}"
        );
    }
    // Audience configured.
    let ka = keys_aud();
    for aud in [
        json!("other-api"),
        json!(["other-api"]),
        json!([]),
        json!(""),
        json!(null),
        json!(1),
    ] {
        let c = with(claims(t), "aud", aud.clone());
        assert!(ka.verify(&sign(&header(), &c), now()).is_err(), "{aud}");
    }
    assert!(ka.verify(&sign(&header(), &claims(t)), now()).is_err()); // missing
    for aud in [
        json!(AUDIENCE),
        json!([AUDIENCE]),
        json!(["other-api", AUDIENCE]),
    ] {
        let c = with(claims(t), "aud", aud.clone());
        let got = ka.verify(&sign(&header(), &c), now()).unwrap();
        assert_eq!(got.aud.as_deref(), Some(AUDIENCE), "{aud}");
    }
    // No audience configured: any `aud` is refused, even ours, empty or null.
    for aud in [
        json!(AUDIENCE),
        json!([AUDIENCE]),
        json!([]),
        json!(""),
        json!(null),
    ] {
        let c = with(claims(t), "aud", aud.clone());
        assert_eq!(
            verify(&sign(&header(), &c)),
            Err(JwtError::WrongAudience),
            "{aud}"
        );
    }
}

#[test]
fn t09_typ_must_be_at_jwt() {
    let t = ts();
    for typ in [
        json!("JWT"),
        json!("jwt"),
        json!("AT+JWT"),
        json!("application/at+jwt"),
        json!("refresh+jwt"),
        json!("state"),
        json!(""),
        json!(null),
    ] {
        let h = json!({"alg": "HS256", "typ": typ});
        assert!(verify(&sign(&h, &claims(t))).is_err(), "{typ}");
    }
    let h = json!({"alg": "HS256"});
    assert_eq!(verify(&sign(&h, &claims(t))), Err(JwtError::WrongType));
    let h = json!({"alg": "HS256", "typ": 1});
    assert_eq!(verify(&sign(&h, &claims(t))), Err(JwtError::Malformed));
    // Opaque refresh tokens and OAuth state values are not JWTs at all.
    for opaque in ["rt_3q2+7w-8F1K9v0bJcS4nXyZ", "c3RhdGUtdmFsdWU", "a.b"] {
        assert_eq!(verify(opaque), Err(JwtError::Malformed));
    }
    // A `crit` header is refused (we understand no extensions).
    let h = json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"]});
    assert_eq!(
        verify(&sign(&h, &claims(t))),
        Err(JwtError::UnsupportedHeader)
    );
}

// ---------------------------------------------------------------- T10–T12

#[test]
fn t10_key_headers_are_ignored_never_used() {
    let t = ts();
    let attacker = b"attacker-controlled-key-material-0123456789";
    let jwk = json!({"kty": "oct", "k": b64(attacker), "alg": "HS256"});
    let hostile_headers = [
        json!({"alg": "HS256", "typ": "at+jwt", "jwk": jwk}),
        json!({"alg": "HS256", "typ": "at+jwt", "jku": "http://attacker.example/jwks.json"}),
        json!({"alg": "HS256", "typ": "at+jwt", "jku": "http://169.254.169.254/latest/meta-data/"}),
        json!({"alg": "HS256", "typ": "at+jwt", "x5u": "http://169.254.169.254/latest/meta-data/"}),
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "../../dev/null"}),
        json!({"alg": "HS256", "typ": "at+jwt", "kid": "' OR '1'='1"}),
    ];
    for h in &hostile_headers {
        // Signed with the attacker's key, or with the empty key `/dev/null` would yield: refused.
        for key in [&attacker[..], b""] {
            let token = forge(h, &claims(t), key, Hs::S256);
            assert_eq!(verify(&token), Err(JwtError::BadSignature), "{h}");
        }
        // Signed with our secret: the header has no effect (no lookup, no fetch).
        assert!(verify(&sign(h, &claims(t))).is_ok(), "{h}");
    }
    // A 10 KB kid is over the size limit.
    let h = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k".repeat(10 * 1024)});
    assert_eq!(verify(&sign(&h, &claims(t))), Err(JwtError::Malformed));
}

#[test]
fn t11_malformed_tokens() {
    let t = ts();
    let good = sign(&header(), &claims(t));
    let p = segments(&good);
    let cases: Vec<String> = vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        p[0].clone(),
        format!("{}.{}", p[0], p[1]),
        format!("{}.{}.{}.{}", p[0], p[1], p[2], p[2]),
        format!("{good}."),
        format!(".{good}"),
        format!("{}.{}.", p[0], p[1]),
        format!("{}..{}", p[0], p[2]),
        format!(
            "{}.{}.{}",
            p[0],
            p[1].replace(['A', 'B', 'C', 'e'], "+"),
            p[2]
        ),
        format!(
            "{}.{}.{}",
            p[0],
            p[1],
            p[2].replacen(|c: char| c.is_alphanumeric(), "/", 1)
        ),
        format!("{}=.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}==.{}", p[0], p[1], p[2]),
        format!("{good}="),
        format!(" {good}"),
        format!("{good} "),
        format!("{good}\n"),
        format!("{}. {}.{}", p[0], p[1], p[2]),
        format!("Bearer {good}"),
        format!("{}\u{0}.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}é", p[0], p[1], p[2]),
        "a".repeat(64 * 1024),
        format!("{}.{}.{}", p[0], "A".repeat(64 * 1024), p[2]),
        format!("{}.{}.{}", b64("not json"), p[1], p[2]),
        format!("{}.{}.{}", b64("[]"), p[1], p[2]),
    ];
    for case in &cases {
        let err = verify(case).unwrap_err();
        assert!(
            matches!(err, JwtError::Malformed | JwtError::BadSignature),
            "{:?} -> {err:?}",
            case.get(..80).unwrap_or(case)
        );
    }
    // Size limit: just under 8 KiB verifies, just over does not, whatever the content.
    let pad = |n: usize| sign(&header(), &with(claims(t), "pad", json!("x".repeat(n))));
    let mut n = 5000;
    while pad(n + 1).len() <= MAX_TOKEN_LEN {
        n += 1;
    }
    assert!(verify(&pad(n)).is_ok());
    assert_eq!(verify(&pad(n + 1)), Err(JwtError::Malformed));
}

#[test]
fn verify_never_panics_on_random_input() {
    use rand::Rng;
    let k = keys();
    let n = now();
    let alphabet: Vec<char> = "ABCxyz019-_.=+/ \u{0}é{}\":,[]".chars().collect();
    let mut rng = rand::rng();
    let good = sign(&header(), &claims(n.timestamp()));
    for _ in 0..3000 {
        let len = rng.random_range(0..200);
        let s: String = (0..len)
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect();
        assert!(k.verify(&s, n).is_err());
        // Random JSON-ish payload inside a well-formed, correctly signed envelope.
        let token = forge_raw(&header().to_string(), &s, SECRET.as_bytes(), Hs::S256);
        assert!(k.verify(&token, n).is_err());
        // Random splice into a good token.
        let at = rng.random_range(0..good.len());
        let spliced = format!("{}{s}{}", &good[..at], &good[at..]);
        let _ = k.verify(&spliced, n);
    }
    // Extreme clocks.
    let (token, _) = k.issue(USER, SID, n + Duration::days(1), n).unwrap();
    for clock in [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        DateTime::UNIX_EPOCH,
    ] {
        assert!(k.verify(&token, clock).is_err());
        let _ = k.issue(USER, SID, clock, clock);
        let _ = k.issue(USER, SID, DateTime::<Utc>::MAX_UTC, clock);
    }
}

#[test]
fn t12_secret_validation() {
    let parse = |s: &str| JwtSecret::parse(SecretString::from(s));
    assert_eq!(parse("").unwrap_err(), JwtSecretError::Empty);
    for short in [
        "xy",
        "short-but-random-Q7f",
        &"0123456789abcdef0123456789abcde"[..31],
    ] {
        assert_eq!(
            parse(short).unwrap_err(),
            JwtSecretError::TooShort,
            "{short}"
        );
    }
    for placeholder in [
        "secret",
        "SECRET",
        "changeme",
        "ChangeMe",
        "change-me",
        "your-secret-key",
        "jwt-secret",
        "JWT-Secret",
        "please-change-me",
        "CHANGE_ME_to_at_least_32_random_bytes_0000",
        "change_me_to_at_least_32_random_bytes_0000",
        " CHANGE_ME_to_at_least_32_random_bytes_0000\n",
        "changeme-changeme-changeme-changeme",
    ] {
        assert_eq!(
            parse(placeholder).unwrap_err(),
            JwtSecretError::Placeholder,
            "{placeholder}"
        );
    }
    for repeated in [
        "a".repeat(64),
        " ".repeat(40),
        "é".repeat(32),
        "0".repeat(32),
    ] {
        assert_eq!(
            parse(&repeated).unwrap_err(),
            JwtSecretError::RepeatedCharacter
        );
    }
    assert!(parse(SECRET).is_ok());
    assert!(parse(&"0123456789abcdef".repeat(2)).is_ok());

    // Neither Display nor Debug of errors, the secret or the keys reveal the value.
    let value = "CHANGE_ME_to_at_least_32_random_bytes_0000";
    let err = parse(value).unwrap_err();
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(value) && !text.contains("0000"), "{text}");
    }
    let err = parse("short-but-random-Q7f").unwrap_err();
    assert!(!err.to_string().contains("Q7f"));
    let s = settings(None);
    for text in [
        format!("{:?}", s.secret),
        format!("{s:?}"),
        format!("{:?}", JwtKeys::new(&s)),
    ] {
        assert!(
            !text.contains(SECRET) && !text.contains("abcdefghij"),
            "{text}"
        );
    }
}

#[test]
fn errors_never_contain_token_text() {
    let t = ts();
    let k = keys();
    let tokens = [
        sign(&header(), &with(claims(t), "exp", json!(t - 100))),
        sign(&json!({"alg": "HS512", "typ": "at+jwt"}), &claims(t)),
        forge(&header(), &claims(t), b"wrong", Hs::S256),
        sign(&header(), &with(claims(t), "exp", json!("1e9"))),
        "Z2FyYmFnZQ.dG9rZW4.aGVyZQ".to_owned(),
    ];
    for token in tokens {
        let err = k.verify(&token, now()).unwrap_err();
        for text in [err.to_string(), format!("{err:?}")] {
            for part in token.split('.').filter(|p| p.len() > 3) {
                assert!(!text.contains(part), "{text}");
            }
        }
    }
}
