//! Forged and tampered JWTs against `GET /api/auth/me` (T01–T10, a representative set; the
//! exhaustive cases are unit tests in `domain/src/jwt/tests.rs`). Tokens are built by hand
//! (`test_support::jwt`) so any header, claim or encoding can be produced. Every refusal must be the
//! generic 401 and must leave the database untouched.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use entity::{handoff_code, oauth_state, session, user};
use reqwest::{StatusCode, header};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use test_support::jwt::{Hs, b64, forge, forge_raw, unverified_claims, with, without};

use crate::helpers::*;

const AUDIENCE: &str = "patreon-gate-api";

/// HS256 with the service's own secret: only what the test changes differs from a real token.
fn sign(header: &Value, claims: &Value) -> String {
    forge(header, claims, JWT_SECRET.as_bytes(), Hs::S256)
}

fn good_header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt"})
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Fresh claims for the live session of a signed-in JWT (as the service would issue them).
fn live_claims(jwt: &str) -> Value {
    let real = unverified_claims(jwt);
    let now = now();
    let mut claims = json!({
        "user_id": real["sub"], "sub": real["sub"], "sid": real["sid"],
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "iat": now, "exp": now + 600, "iss": "patreon-gate",
    });
    if let Some(aud) = real.get("aud") {
        claims["aud"] = aud.clone();
    }
    claims
}

/// Everything an authentication attempt could write.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: Vec<user::Model>,
    sessions: Vec<session::Model>,
    oauth_states: usize,
    handoff_codes: usize,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    Snapshot {
        users: user::Entity::find().all(&app.db).await.unwrap(),
        sessions: session::Entity::find().all(&app.db).await.unwrap(),
        oauth_states: oauth_state::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .len(),
        handoff_codes: handoff_code::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .len(),
    }
}

/// The body of a request without any credentials: every refusal must look exactly like it.
async fn generic_401(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/api/auth/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
    body
}

/// Presents `token` by Bearer and by cookie; both must get the generic 401.
async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let generic = generic_401(app).await;
    for (how, response) in [
        ("Bearer", app.me_bearer(token).await),
        ("cookie", app.me_cookie(token).await),
    ] {
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{what} by {how}: {token}"
        );
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer",
            "{what} by {how}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, generic, "{what} by {how}");
    }
}

async fn assert_accepted(app: &TestApp, token: &str, what: &str) {
    let response = app.me_bearer(token).await;
    assert_eq!(response.status(), StatusCode::OK, "{what}: {token}");
}

/// A signed-in member; `.jwt` is known good.
async fn member(app: &TestApp, id: &str) -> SignedIn {
    let id = app.active_patron(id);
    let signed_in = app.sign_in(&id).await;
    assert_accepted(app, &signed_in.jwt, "the real token").await;
    signed_in
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn alg_none_in_any_spelling_is_refused(app) {
        // T01.
        let signed_in = member(&app, "30101").await;
        let claims = live_claims(&signed_in.jwt);
        let real_signature = signed_in.jwt.rsplit_once('.').unwrap().1.to_owned();
        let before = snapshot(&app).await;

        for alg in ["none", "None", "NONE", "nOnE", ""] {
            let header = json!({"alg": alg, "typ": "at+jwt"});
            let unsigned = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
            for signature in ["", real_signature.as_str(), "AAAA"] {
                assert_refused(&app, &format!("{unsigned}.{signature}"), &format!("alg {alg:?}")).await;
            }
            // MAC'd anyway: the header still names no algorithm we accept.
            assert_refused(&app, &sign(&header, &claims), &format!("alg {alg:?}, MAC'd")).await;
        }
        let no_alg = format!("{}.{}.", b64(json!({"typ": "at+jwt"}).to_string()), b64(claims.to_string()));
        assert_refused(&app, &no_alg, "no alg").await;

        assert_eq!(snapshot(&app).await, before);
        assert_accepted(&app, &sign(&good_header(), &claims), "the same claims, properly signed").await;
    }

    async fn other_algorithms_and_other_secrets_are_refused(app) {
        // T02, T03, T04.
        let signed_in = member(&app, "30201").await;
        let claims = live_claims(&signed_in.jwt);
        let secret = JWT_SECRET.as_bytes();
        let before = snapshot(&app).await;

        let hs384 = json!({"alg": "HS384", "typ": "at+jwt"});
        let hs512 = json!({"alg": "HS512", "typ": "at+jwt"});
        assert_refused(&app, &forge(&hs384, &claims, secret, Hs::S384), "HS384, right secret").await;
        assert_refused(&app, &forge(&hs512, &claims, secret, Hs::S512), "HS512, right secret").await;
        for alg in ["RS256", "ES256", "EdDSA", "PS256"] {
            let header = json!({"alg": alg, "typ": "at+jwt"});
            assert_refused(&app, &sign(&header, &claims), &format!("{alg} header, HS256 MAC")).await;
        }
        // An HS256 header over an HS512 MAC: the algorithm changed after signing.
        assert_refused(&app, &forge(&good_header(), &claims, secret, Hs::S512), "HS512 MAC under HS256").await;
        let others = [
            b"another-secret-that-is-long-enough-0123456789".to_vec(),
            format!("{JWT_SECRET}\n").into_bytes(),
            secret[..secret.len() - 1].to_vec(),
            Vec::new(),
        ];
        for other in &others {
            let what = format!("secret {:?}", String::from_utf8_lossy(other));
            assert_refused(&app, &forge(&good_header(), &claims, other, Hs::S256), &what).await;
        }

        assert_eq!(snapshot(&app).await, before);
    }

    async fn an_edited_payload_under_the_old_signature_is_refused(app) {
        // T05.
        let signed_in = member(&app, "30301").await;
        let victim = member(&app, "30302").await;
        let (header_segment, _) = signed_in.jwt.split_once('.').unwrap();
        let (_, signature) = signed_in.jwt.rsplit_once('.').unwrap();
        let real = unverified_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        let edits = [
            with(with(real.clone(), "sub", json!("30302")), "user_id", json!("30302")),
            with(real.clone(), "sub", json!("30302")),
            with(real.clone(), "user_id", json!("30302")),
            with(real.clone(), "isPaidMember", json!(true)),
            with(real.clone(), "exp", json!(real["exp"].as_i64().unwrap() + 86_400)),
            with(real.clone(), "sid", unverified_claims(&victim.jwt)["sid"].clone()),
        ];
        for edited in &edits {
            let token = format!("{header_segment}.{}.{signature}", b64(edited.to_string()));
            assert_refused(&app, &token, &format!("edited claims {edited}")).await;
        }
        // Any single changed character anywhere.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let bytes = signed_in.jwt.as_bytes();
        for i in (0..bytes.len()).filter(|&i| bytes[i] != b'.') {
            let index = ALPHABET.iter().position(|&c| c == bytes[i]).unwrap();
            let mut tampered = bytes.to_vec();
            tampered[i] = ALPHABET[index ^ 1];
            let tampered = String::from_utf8(tampered).unwrap();
            let response = app.me_bearer(&tampered).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "character {i} changed: {tampered}");
        }
        // Correctly MAC'd, but naming another member inside my session: the session is bound to me.
        let mut crossed = live_claims(&signed_in.jwt);
        crossed["sub"] = json!("30302");
        crossed["user_id"] = json!("30302");
        assert_refused(&app, &sign(&good_header(), &crossed), "another member in my session").await;

        assert_eq!(snapshot(&app).await, before);
        assert_accepted(&app, &signed_in.jwt, "the untouched token").await;
    }

    async fn expiry_and_issue_times_are_enforced_with_a_thirty_second_leeway(app) {
        // T06, margins ±10 s around the 30 s leeway.
        let signed_in = member(&app, "30401").await;
        let claims = live_claims(&signed_in.jwt);
        let now = now();
        let before = snapshot(&app).await;

        let expired = with(with(claims.clone(), "iat", json!(now - 600)), "exp", json!(now - 40));
        assert_refused(&app, &sign(&good_header(), &expired), "exp = now - 40").await;
        let future_nbf = with(claims.clone(), "nbf", json!(now + 40));
        assert_refused(&app, &sign(&good_header(), &future_nbf), "nbf = now + 40").await;
        let future_iat = with(with(claims.clone(), "iat", json!(now + 40)), "exp", json!(now + 900));
        assert_refused(&app, &sign(&good_header(), &future_iat), "iat = now + 40").await;
        // Older than the absolute session lifetime (168 h), even with a live exp.
        let ancient = with(claims.clone(), "iat", json!(now - 169 * 3600));
        assert_refused(&app, &sign(&good_header(), &ancient), "iat older than 168 h").await;
        assert_eq!(snapshot(&app).await, before);

        let within = with(with(claims.clone(), "iat", json!(now - 600)), "exp", json!(now - 20));
        assert_accepted(&app, &sign(&good_header(), &within), "exp = now - 20").await;
        let near_nbf = with(claims.clone(), "nbf", json!(now + 20));
        assert_accepted(&app, &sign(&good_header(), &near_nbf), "nbf = now + 20").await;
    }

    async fn missing_inconsistent_or_mistyped_claims_are_refused(app) {
        // T07: never a 500.
        let signed_in = member(&app, "30501").await;
        let claims = live_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        for name in ["sid", "jti", "exp", "iat", "iss", "sub", "user_id"] {
            assert_refused(&app, &sign(&good_header(), &without(claims.clone(), name)), &format!("no {name}")).await;
        }
        let exp = claims["exp"].as_i64().unwrap();
        let cases = [
            ("user_id != sub", with(claims.clone(), "user_id", json!("30599"))),
            ("string exp", with(claims.clone(), "exp", json!(exp.to_string()))),
            ("string nbf", with(claims.clone(), "nbf", json!((exp - 1200).to_string()))),
            ("float exp", with(claims.clone(), "exp", json!(exp as f64 + 0.5))),
            ("null exp", with(claims.clone(), "exp", Value::Null)),
            ("negative exp", with(claims.clone(), "exp", json!(-1))),
            ("numeric sub", with(with(claims.clone(), "sub", json!(30501)), "user_id", json!(30501))),
            ("empty sid", with(claims.clone(), "sid", json!(""))),
            ("array sid", with(claims.clone(), "sid", json!([claims["sid"].clone()]))),
            ("200-byte jti", with(claims.clone(), "jti", json!("a".repeat(200)))),
        ];
        for (what, bad) in cases {
            assert_refused(&app, &sign(&good_header(), &bad), what).await;
        }
        let huge_exp = claims.to_string().replace(&format!("\"exp\":{exp}"), "\"exp\":18446744073709551616");
        assert!(huge_exp.contains("18446744073709551616"));
        let token = forge_raw(&good_header().to_string(), &huge_exp, JWT_SECRET.as_bytes(), Hs::S256);
        assert_refused(&app, &token, "exp = 2^64").await;
        let not_json = forge_raw(&good_header().to_string(), "not json", JWT_SECRET.as_bytes(), Hs::S256);
        assert_refused(&app, &not_json, "claims not JSON").await;

        assert_eq!(snapshot(&app).await, before);
    }

    async fn a_foreign_issuer_or_an_unexpected_audience_is_refused(app) {
        // T08, no audience configured.
        let signed_in = member(&app, "30601").await;
        assert!(unverified_claims(&signed_in.jwt).get("aud").is_none(), "no aud when none is configured");
        let claims = live_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        for iss in [json!("patreon-gate-staging"), json!("Patreon-Gate"), json!(""), json!(["patreon-gate"])] {
            assert_refused(&app, &sign(&good_header(), &with(claims.clone(), "iss", iss.clone())), &format!("iss {iss}")).await;
        }
        for aud in [json!("patreon-gate"), json!(AUDIENCE), json!(["patreon-gate"]), json!([]), Value::Null] {
            assert_refused(&app, &sign(&good_header(), &with(claims.clone(), "aud", aud.clone())), &format!("aud {aud}")).await;
        }

        assert_eq!(snapshot(&app).await, before);
    }

    async fn the_header_type_must_be_an_access_token(app) {
        // T09.
        let signed_in = member(&app, "30701").await;
        let claims = live_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        assert_refused(&app, &sign(&json!({"alg": "HS256"}), &claims), "typ missing").await;
        for typ in [json!("JWT"), json!("refresh+jwt"), json!(""), Value::Null] {
            let header = json!({"alg": "HS256", "typ": typ});
            assert_refused(&app, &sign(&header, &claims), &format!("typ {typ}")).await;
        }
        assert_refused(&app, &sign(&json!({"alg": "HS256", "typ": "at+jwt", "crit": ["exp"]}), &claims), "crit").await;
        // Other credentials of the flow are not access tokens.
        assert_refused(&app, &signed_in.refresh_cookie, "refresh token as access token").await;
        assert_refused(&app, &signed_in.handoff(), "handoff code as access token").await;
        let (_, state_cookie) = app.start_login(None).await;
        let state = state_cookie.split_once('=').unwrap().1.to_owned();
        let before = Snapshot { oauth_states: before.oauth_states + 1, ..before };
        assert_refused(&app, &state, "OAuth state as access token").await;

        assert_eq!(snapshot(&app).await, before);
    }

    async fn key_headers_are_ignored_and_never_fetched(app) {
        // T10: one key, nothing fetched. A trap listener counts any connection.
        let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let trap_url = format!("http://{}", trap.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while trap.accept().await.is_ok() {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let signed_in = member(&app, "30801").await;
        let claims = live_claims(&signed_in.jwt);
        let attacker = b"attacker-controlled-secret-0123456789abcdef";
        let mock_identity = format!("{}/api/oauth2/v2/identity", app.mock.base_url());
        let stats_before = app.mock.stats();
        let before = snapshot(&app).await;

        let urls = [
            format!("{trap_url}/jwks.json"),
            mock_identity.clone(),
            "http://169.254.169.254/latest/meta-data/".to_owned(),
        ];
        for url in &urls {
            for field in ["jku", "x5u"] {
                let header = json!({"alg": "HS256", "typ": "at+jwt", field: url});
                let attacker_token = forge(&header, &claims, attacker, Hs::S256);
                assert_refused(&app, &attacker_token, &format!("{field} {url}, attacker's key")).await;
                // With the real key the URL is simply ignored.
                assert_accepted(&app, &sign(&header, &claims), &format!("{field} {url}, our key")).await;
            }
        }
        let jwk = json!({"kty": "oct", "k": b64(attacker), "alg": "HS256"});
        let header = json!({"alg": "HS256", "typ": "at+jwt", "jwk": jwk});
        assert_refused(&app, &forge(&header, &claims, attacker, Hs::S256), "embedded attacker jwk").await;
        let x5c = json!({"alg": "HS256", "typ": "at+jwt", "x5c": [b64(attacker)]});
        assert_refused(&app, &forge(&x5c, &claims, attacker, Hs::S256), "x5c, attacker's key").await;
        for kid in ["../../dev/null", "' OR '1'='1", "/proc/self/environ", "k1"] {
            let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
            assert_refused(&app, &forge(&header, &claims, attacker, Hs::S256), &format!("kid {kid}, attacker's key")).await;
            assert_refused(&app, &forge(&header, &claims, b"", Hs::S256), &format!("kid {kid}, empty key")).await;
            assert_accepted(&app, &sign(&header, &claims), &format!("kid {kid}, our key")).await;
        }
        // A 10 KB kid makes the token too large to consider at all.
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": "k".repeat(10 * 1024)});
        assert_refused(&app, &sign(&header, &claims), "10 KB kid").await;

        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(connections.load(Ordering::SeqCst), 0, "the api fetched a key URL");
        assert_eq!(app.mock.stats(), stats_before, "the api called the mock");
        assert_eq!(snapshot(&app).await, before);
    }

    async fn a_valid_token_for_a_session_that_does_not_exist_is_refused(app) {
        let signed_in = member(&app, "30901").await;
        let claims = live_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        let unknown_sid = with(claims.clone(), "sid", json!(uuid::Uuid::new_v4().simple().to_string()));
        assert_refused(&app, &sign(&good_header(), &unknown_sid), "unknown sid").await;
        let injected_sid = with(claims.clone(), "sid", json!("' OR '1'='1"));
        assert_refused(&app, &sign(&good_header(), &injected_sid), "SQL in sid").await;
        let unknown_member = with(with(claims.clone(), "sub", json!("99999999")), "user_id", json!("99999999"));
        assert_refused(&app, &sign(&good_header(), &unknown_member), "unknown member").await;

        assert_eq!(snapshot(&app).await, before);
    }
}

on_both_backends! {
    setup = |backend| TestApp::spawn_with(backend, Options::default().with("JWT_AUDIENCE", AUDIENCE));

    async fn with_an_audience_configured_tokens_must_carry_it(app) {
        // T08, audience configured.
        let signed_in = member(&app, "31001").await;
        assert_eq!(unverified_claims(&signed_in.jwt)["aud"], AUDIENCE);
        let claims = live_claims(&signed_in.jwt);
        let before = snapshot(&app).await;

        assert_refused(&app, &sign(&good_header(), &without(claims.clone(), "aud")), "no aud").await;
        for aud in [json!("patreon-gate"), json!(["patreon-gate", "other"]), json!([]), Value::Null, json!(format!("{AUDIENCE} "))] {
            assert_refused(&app, &sign(&good_header(), &with(claims.clone(), "aud", aud.clone())), &format!("aud {aud}")).await;
        }
        assert_eq!(snapshot(&app).await, before);

        assert_accepted(&app, &sign(&good_header(), &claims), "our aud").await;
        let array = with(claims.clone(), "aud", json!(["other", AUDIENCE]));
        assert_accepted(&app, &sign(&good_header(), &array), "aud array with ours").await;
    }
}
