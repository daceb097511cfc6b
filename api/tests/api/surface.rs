//! The HTTP surface: how credentials may be presented (T11), cookie attributes (T19), rate
//! limits (T40), body limits, errors, health checks and security headers.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::{Response, StatusCode, header};
use serde_json::Value;
use test_support::jwt::unverified_claims;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// The `Set-Cookie` line for cookie `name`.
fn set_cookie_line(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .find(|c| c.split('=').next().map(str::trim) == Some(name))
        .unwrap_or_else(|| panic!("no {name} cookie in {set_cookies:?}"))
        .clone()
}

fn max_age(set_cookie: &str) -> i64 {
    cookie_attribute(set_cookie, "Max-Age")
        .unwrap_or_else(|| panic!("no Max-Age: {set_cookie}"))
        .parse()
        .unwrap()
}

/// The standard JSON error body with `error` = `code`; returns the whole body text.
async fn assert_json_error(response: Response, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status, "expected {code}");
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    assert_eq!(body["error"], code, "{text}");
    assert!(body["message"].is_string(), "{text}");
    assert_eq!(body.as_object().unwrap().len(), 2, "{text}");
    text
}

async fn assert_unauthorized(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer",
        "{what}"
    );
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "no-store",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{what}: {body}");
}

fn assert_security_headers(response: &Response, what: &str) {
    let headers = response.headers();
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{what}");
}

/// Sends `request` (raw HTTP/1.1 with `Connection: close`) and returns the status and the
/// whole response text.
pub(crate) async fn raw_http(app: &TestApp, request: &str) -> (u16, String) {
    let host = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // The server may answer before reading everything and close; what it sent is enough.
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    (status, text)
}

async fn me_with(app: &TestApp, headers: &[(&str, &str)]) -> Response {
    let mut request = app.client.get(app.url("/api/auth/me"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn two_authorization_headers_are_refused_even_when_both_are_valid(app) {
        let id = app.active_patron("40101");
        let signed_in = app.sign_in(&id).await;
        let bearer = format!("Bearer {}", signed_in.jwt);

        let both_valid = me_with(&app, &[("authorization", &bearer), ("authorization", &bearer)]).await;
        let valid_and_junk = me_with(&app, &[("authorization", &bearer), ("authorization", "Bearer junk")]).await;

        assert_unauthorized(both_valid, "two valid Authorization headers").await;
        assert_unauthorized(valid_and_junk, "valid and junk Authorization headers").await;
        assert_eq!(me_with(&app, &[("authorization", &bearer)]).await.status(), StatusCode::OK);
    }

    async fn only_a_non_empty_bearer_scheme_is_accepted(app) {
        let id = app.active_patron("40102");
        let signed_in = app.sign_in(&id).await;
        let basic = format!("Basic {}", STANDARD.encode(format!("{id}:{}", signed_in.jwt)));
        let cookie = format!("auth_token={}", signed_in.jwt);
        let token_scheme = format!("Token {}", signed_in.jwt);
        let raw_token = signed_in.jwt.clone();

        let cases: [(&str, Vec<(&str, &str)>); 6] = [
            ("Basic", vec![("authorization", &basic)]),
            ("Basic next to a valid cookie", vec![("authorization", &basic), ("cookie", &cookie)]),
            ("empty Bearer", vec![("authorization", "Bearer ")]),
            ("bare Bearer", vec![("authorization", "Bearer")]),
            ("Token scheme", vec![("authorization", &token_scheme)]),
            ("no scheme", vec![("authorization", &raw_token)]),
        ];
        for (what, headers) in cases {
            assert_unauthorized(me_with(&app, &headers).await, what).await;
        }
    }

    async fn a_token_in_the_query_string_is_never_read(app) {
        let id = app.active_patron("40103");
        let signed_in = app.sign_in(&id).await;

        for name in ["access_token", "token", "auth_token", "jwt"] {
            let url = format!("{}?{name}={}", app.url("/api/auth/me"), signed_in.jwt);
            let response = app.client.get(url).send().await.unwrap();
            assert_unauthorized(response, name).await;
        }
    }

    async fn cookie_and_bearer_naming_different_members_are_refused(app) {
        let a = app.sign_in(&app.active_patron("40104")).await;
        let b = app.sign_in(&app.active_patron("40105")).await;
        let bearer_a = format!("Bearer {}", a.jwt);

        let mixed = me_with(&app, &[("authorization", &bearer_a), ("cookie", &format!("auth_token={}", b.jwt))]).await;
        let two_cookies = me_with(&app, &[("cookie", &format!("auth_token={}; auth_token={}", a.jwt, b.jwt))]).await;
        let junk_cookie = me_with(&app, &[("authorization", &bearer_a), ("cookie", "auth_token=junk")]).await;
        let same = me_with(&app, &[("authorization", &bearer_a), ("cookie", &format!("auth_token={}", a.jwt))]).await;

        assert_unauthorized(mixed, "A by Bearer, B by cookie").await;
        assert_unauthorized(two_cookies, "two different auth_token cookies").await;
        assert_unauthorized(junk_cookie, "a junk cookie next to a valid Bearer").await;
        assert_eq!(same.status(), StatusCode::OK, "the same member both ways");
        let me: Value = same.json().await.unwrap();
        assert_eq!(me["patreonId"], "40104");
    }

    async fn malformed_and_oversized_tokens_are_refused_without_an_error(app) {
        let id = app.active_patron("40106");
        let signed_in = app.sign_in(&id).await;
        let jwt = &signed_in.jwt;
        let (head, signature) = jwt.rsplit_once('.').unwrap();
        // Same MAC bytes, other alphabet and padding (always differs: 32 bytes need one `=`).
        let standard_signature = STANDARD.encode(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap(),
        );
        let huge = "a".repeat(64 * 1024);
        let huge_jwt = format!("{head}.{}", "A".repeat(64 * 1024));
        let cases = [
            ("two segments", head.to_owned()),
            ("four segments", format!("{jwt}.{signature}")),
            ("padding", format!("{jwt}=")),
            ("padded standard base64 signature", format!("{head}.{standard_signature}")),
            ("inner whitespace", format!("{head}. {signature}")),
            ("non-ASCII", format!("{jwt}é")),
            ("64 KB junk", huge.clone()),
            ("64 KB signature", huge_jwt.clone()),
        ];

        for (what, token) in &cases {
            let response = app
                .client
                .get(app.url("/api/auth/me"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
                .unwrap();
            assert_unauthorized(response, &format!("{what} by Bearer")).await;
        }
        assert_unauthorized(app.me_cookie(&huge).await, "64 KB cookie").await;
        assert_eq!(app.me_bearer(jwt).await.status(), StatusCode::OK, "the service is fine");
    }

    async fn sign_in_sets_hardened_cookies_and_the_jwt_only_in_set_cookie(app) {
        // T19, default configuration.
        let id = app.active_patron("40201");
        let login = app.client.get(app.url("/api/auth/patreon/login")).send().await.unwrap();
        assert_eq!(login.status(), StatusCode::FOUND);
        let login_cookies = set_cookies(&login);
        let authorize = location(&login);
        let login_body = login.text().await.unwrap();

        let state = set_cookie_line(&login_cookies, "__Host-oauth_state");
        assert!(cookie_attribute(&state, "HttpOnly").is_some(), "{state}");
        assert!(cookie_attribute(&state, "Secure").is_some(), "{state}");
        assert_eq!(cookie_attribute(&state, "SameSite").as_deref(), Some("Lax"), "{state}");
        assert_eq!(cookie_attribute(&state, "Path").as_deref(), Some("/"), "{state}");
        assert_eq!(cookie_attribute(&state, "Domain"), None, "{state}");
        assert!((1..=600).contains(&max_age(&state)), "{state}");
        let state_pair = state.split(';').next().unwrap().to_owned();
        let callback_url = app.consent(&authorize, &id).await;

        let callback = app.callback(&callback_url, &state_pair).await;

        assert_eq!(callback.status(), StatusCode::FOUND);
        let cookies = set_cookies(&callback);
        let landing = location(&callback);
        let callback_body = callback.text().await.unwrap();
        let jwt = cookie_value(&cookies, "auth_token").expect("auth_token cookie");
        let auth = set_cookie_line(&cookies, "auth_token");
        assert!(cookie_attribute(&auth, "HttpOnly").is_some(), "{auth}");
        assert!(cookie_attribute(&auth, "Secure").is_some(), "{auth}");
        assert_eq!(cookie_attribute(&auth, "Path").as_deref(), Some("/"), "{auth}");
        assert_eq!(cookie_attribute(&auth, "SameSite").as_deref(), Some("Lax"), "{auth}");
        assert_eq!(cookie_attribute(&auth, "Domain"), None, "{auth}");
        let claims = unverified_claims(&jwt);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!((1..=15 * 60).contains(&max_age(&auth)), "{auth}");
        assert!(max_age(&auth) <= lifetime, "{auth} outlives exp");
        let refresh = set_cookie_line(&cookies, "auth_refresh");
        assert!(cookie_attribute(&refresh, "HttpOnly").is_some(), "{refresh}");
        assert!(cookie_attribute(&refresh, "Secure").is_some(), "{refresh}");
        assert_eq!(cookie_attribute(&refresh, "Path").as_deref(), Some("/api/auth"), "{refresh}");
        assert_eq!(cookie_attribute(&refresh, "SameSite").as_deref(), Some("Lax"), "{refresh}");
        // The state cookie is spent.
        let state_cleared = set_cookie_line(&cookies, "__Host-oauth_state");
        assert_eq!(max_age(&state_cleared), 0, "{state_cleared}");
        // The JWT travels in Set-Cookie only.
        for (what, text) in [("login Location", &authorize), ("login body", &login_body),
            ("callback Location", &landing), ("callback body", &callback_body)] {
            assert!(!text.contains(&jwt), "JWT in the {what}");
            assert!(!text.contains(jwt.split('.').nth(2).unwrap()), "JWT signature in the {what}");
        }
        assert_eq!(app.me_cookie(&jwt).await.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_domain_is_set_only_when_configured() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("COOKIE_DOMAIN", "example.com"),
    )
    .await;
    let id = app.active_patron("40202");

    let signed_in = app.sign_in(&id).await;

    for name in ["auth_token", "auth_refresh"] {
        let line = set_cookie_line(&signed_in.set_cookies, name);
        assert_eq!(
            cookie_attribute(&line, "Domain").as_deref(),
            Some("example.com"),
            "{line}"
        );
    }
    // `__Host-` cookies must stay host-only.
    let state = set_cookie_line(&signed_in.set_cookies, "__Host-oauth_state");
    assert_eq!(cookie_attribute(&state, "Domain"), None, "{state}");
    let login = app
        .client
        .get(app.url("/api/auth/patreon/login"))
        .send()
        .await
        .unwrap();
    let state = set_cookie_line(&set_cookies(&login), "__Host-oauth_state");
    assert_eq!(cookie_attribute(&state, "Domain"), None, "{state}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samesite_strict_is_honoured_for_the_sign_in_cookies() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("COOKIE_SAMESITE", "Strict"),
    )
    .await;
    let id = app.active_patron("40203");

    let signed_in = app.sign_in(&id).await;

    for name in ["auth_token", "auth_refresh"] {
        let line = set_cookie_line(&signed_in.set_cookies, name);
        assert_eq!(
            cookie_attribute(&line, "SameSite").as_deref(),
            Some("Strict"),
            "{line}"
        );
    }
    // The state cookie must survive the top-level redirect back from Patreon.
    let login = app
        .client
        .get(app.url("/api/auth/patreon/login"))
        .send()
        .await
        .unwrap();
    let state = set_cookie_line(&set_cookies(&login), "__Host-oauth_state");
    assert_eq!(
        cookie_attribute(&state, "SameSite").as_deref(),
        Some("Lax"),
        "{state}"
    );
}

async fn rate_limited_app() -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("AUTH_RATE_LIMIT_PER_MINUTE", "3"),
    )
    .await
}

async fn assert_rate_limited(response: Response, what: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    let retry_after: u64 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{what}: {retry_after}");
    assert_security_headers(&response, what);
    assert_json_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_login_in_a_minute_is_rate_limited_whatever_the_proxy_headers_say() {
    // T40.
    let app = rate_limited_app().await;
    let login = app.url("/api/auth/patreon/login");
    for n in 1..=3 {
        let response = app.client.get(&login).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "login {n}");
    }

    let fourth = app.client.get(&login).send().await.unwrap();

    assert_rate_limited(fourth, "4th login").await;
    let spoofed = [
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-for", "203.0.113.8"),
        ("x-forwarded-for", "203.0.113.9, 127.0.0.1"),
        ("forwarded", "for=203.0.113.10"),
        ("x-client-ip", "203.0.113.11"),
    ];
    for (name, value) in spoofed {
        let response = app
            .client
            .get(&login)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_rate_limited(response, &format!("{name}: {value}")).await;
    }
    let before = app.count("oauth_states").await;
    let response = app.client.get(&login).send().await.unwrap();
    assert_rate_limited(response, "still limited").await;
    assert_eq!(
        app.count("oauth_states").await,
        before,
        "a limited login stored a state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_refresh_and_token_are_rate_limited_too() {
    let app = rate_limited_app().await;
    let callback = app.url("/api/auth/patreon/callback?code=x&state=y");
    for n in 1..=3 {
        let response = app.client.get(&callback).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "callback {n}");
    }
    for n in 1..=3 {
        let response = app
            .client
            .post(app.url("/api/auth/refresh"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "refresh {n}");
    }

    let callback_4 = app.client.get(&callback).send().await.unwrap();
    let refresh_4 = app
        .client
        .post(app.url("/api/auth/refresh"))
        .send()
        .await
        .unwrap();
    let token_4 = app
        .client
        .post(app.url("/api/auth/token"))
        .json(&serde_json::json!({"handoff": "x"}))
        .send()
        .await
        .unwrap();

    assert_rate_limited(callback_4, "4th callback").await;
    assert_rate_limited(refresh_4, "4th refresh").await;
    assert_rate_limited(token_4, "token after 3 refreshes").await;
    // Other routes are not limited.
    for _ in 0..10 {
        let response = app
            .client
            .get(app.url("/api/auth/me"))
            .send()
            .await
            .unwrap();
        assert_unauthorized(response, "me is not rate limited").await;
    }
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = format!(r#"{{"handoff": "{}"}}"#, "a".repeat(20_000));

    let response = app
        .client
        .post(app.url("/api/auth/token"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();

    assert_security_headers(&response, "413");
    assert_json_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_without_content_length_is_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let chunk = r#"{"handoff": "abc"}"#;
    let request = format!(
        "POST /api/auth/token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );

    let (status, text) = raw_http(&app, &request).await;

    assert_eq!(status, 411, "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains(r#""error":"length_required""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_a_json_404() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    for path in [
        "/nope",
        "/api/auth/nope",
        "/api/auth/me/extra",
        "/.env",
        "/api/../../etc/passwd",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_security_headers(&response, path);
        let text = assert_json_error(response, StatusCode::NOT_FOUND, "not_found").await;
        assert!(!text.contains("nope") && !text.contains("passwd"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_400_that_does_not_echo_the_input() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let sentinel = "ECHO-SENTINEL-<script>alert(1)</script>";
    let bodies = [
        format!(r#"{{"handoff": "{sentinel}"#),
        format!(r#"{{"handoff": {sentinel}}}"#),
        format!(r#"["{sentinel}"]"#),
        format!(r#"{{"{sentinel}": 1}}"#),
        format!(r#"{{"handoff": "{}"}}"#, "a".repeat(200)),
    ];

    for body in bodies {
        let response = app
            .client
            .post(app.url("/api/auth/token"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let text = assert_json_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(
            !text.contains("ECHO-SENTINEL") && !text.contains("script") && !text.contains("aaaa"),
            "input echoed: {text}"
        );
    }
    assert_eq!(app.count("sessions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_ok() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_security_headers(&response, path);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("40301");
    let signed_in = app.sign_in(&id).await;

    let responses = [
        ("me 200", app.me_bearer(&signed_in.jwt).await),
        ("me 401", app.me_bearer("junk").await),
        (
            "login 302",
            app.client
                .get(app.url("/api/auth/patreon/login"))
                .send()
                .await
                .unwrap(),
        ),
        (
            "callback 400",
            app.client
                .get(app.url("/api/auth/patreon/callback"))
                .send()
                .await
                .unwrap(),
        ),
        (
            "logout 405",
            app.client
                .get(app.url("/api/auth/logout"))
                .send()
                .await
                .unwrap(),
        ),
        (
            "404",
            app.client.get(app.url("/missing")).send().await.unwrap(),
        ),
    ];

    for (what, response) in &responses {
        assert_security_headers(response, what);
        assert_eq!(response.headers()["x-frame-options"], "DENY", "{what}");
        assert!(response.headers().contains_key("x-request-id"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_405_with_the_allowed_methods() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (method, path, allow) in [
        ("TRACE", "/api/auth/me", "GET"),
        ("GET", "/api/auth/logout", "POST"),
        ("DELETE", "/healthz", "GET"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_without_a_json_body_gets_a_documented_415() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let response = app
        .client
        .post(app.url("/api/auth/token"))
        .body("handoff=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
    let spec: serde_json::Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    assert!(spec["paths"]["/api/auth/token"]["post"]["responses"]["415"].is_object());
}
