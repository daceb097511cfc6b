//! Sign-in attacks and failures (T18, T21–T28): nothing half-done, nothing reflected, no user.

use patreon_mock::{EndpointFault, Faults};
use reqwest::{StatusCode, header};
use serde_json::Value;
use test_support::jwt::unverified_claims;

use crate::helpers::*;

async fn assert_no_sign_in(app: &TestApp, response: reqwest::Response) -> String {
    let cookies = set_cookies(&response);
    assert!(
        cookie_value(&cookies, "auth_token").is_none(),
        "auth cookie set: {cookies:?}"
    );
    assert!(cookie_value(&cookies, "auth_refresh").is_none());
    let location = location(&response);
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("sessions").await, 0);
    location
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn a_callback_without_state_is_refused_before_any_token_request(app) {
        let id = app.active_patron("1101");
        let (authorize, state_cookie) = app.start_login(None).await;
        let callback = app.consent(&authorize, &id).await;
        let code = query_param(&callback, "code").unwrap();
        let without_state = app.url(&format!("/api/auth/patreon/callback?code={code}"));
        let response = app.callback(&without_state, &state_cookie).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = app.callback(&without_state, &state_cookie).await.json().await.unwrap();
        assert_eq!(body["error"], "invalid_state");
        assert_eq!(app.mock.stats().token_code_grants, 0);
        assert_eq!(app.count("users").await, 0);
    }

    async fn an_attackers_state_and_code_replayed_in_a_victims_browser_bind_nothing(app) {
        let attacker = app.active_patron("1201");
        let (authorize, _attacker_cookie) = app.start_login(None).await;
        let attacker_callback = app.consent(&authorize, &attacker).await;
        // The victim's browser has a state cookie of its own (or none at all).
        let (_, victim_cookie) = app.start_login(None).await;
        for cookie in [victim_cookie.as_str(), ""] {
            let response = app.callback(&attacker_callback, cookie).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert_no_sign_in(&app, response).await;
        }
        assert_eq!(app.mock.stats().token_code_grants, 0);
    }

    async fn a_state_works_once_and_not_after_ten_minutes(app) {
        let id = app.active_patron("1301");
        let (authorize, state_cookie) = app.start_login(None).await;
        let callback = app.consent(&authorize, &id).await;
        assert_eq!(app.callback(&callback, &state_cookie).await.status(), StatusCode::FOUND);
        let replay = app.callback(&callback, &state_cookie).await;
        assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.count("sessions").await, 1);

        let (authorize, state_cookie) = app.start_login(None).await;
        let callback = app.consent(&authorize, &id).await;
        use sea_orm::{EntityTrait, sea_query::Expr};
        entity::oauth_state::Entity::update_many()
            .col_expr(entity::oauth_state::Column::ExpiresAt, Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)))
            .exec(&app.db)
            .await
            .unwrap();
        let stale = app.callback(&callback, &state_cookie).await;
        assert_eq!(stale.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.count("sessions").await, 1);
    }

    async fn a_denied_consent_lands_on_a_fixed_error_and_reflects_nothing(app) {
        app.active_patron("1401");
        let (authorize, state_cookie) = app.start_login(None).await;
        let denied = app.client.get(format!("{authorize}&deny=1")).send().await.unwrap();
        let mut callback = location(&denied);
        callback.push_str("&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
        let response = app.callback(&callback, &state_cookie).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let landing = assert_no_sign_in(&app, response).await;
        assert_eq!(landing, format!("{FRONTEND}/?auth=error&reason=access_denied"));
    }

    async fn patreon_failures_during_sign_in_end_in_a_clear_error_and_no_user(app) {
        let id = app.active_patron("1501");
        let fault = |f: EndpointFault| EndpointFault { fail_next: 1, ..f };
        let cases: Vec<(Faults, &str)> = vec![
            (Faults { token: fault(EndpointFault { status: 400, body: Some(serde_json::json!({"error": "invalid_grant"})), ..Default::default() }), ..Default::default() }, "patreon_error"),
            (Faults { token: fault(EndpointFault { status: 500, ..Default::default() }), ..Default::default() }, "patreon_unavailable"),
            (Faults { token: fault(EndpointFault { status: 500, hang_ms: 30_000, ..Default::default() }), ..Default::default() }, "patreon_unavailable"),
            (Faults { token: EndpointFault { fail_next: 1, status: 200, bad_json: true, ..Default::default() }, ..Default::default() }, "patreon_error"),
            (Faults { token: EndpointFault { fail_next: 1, status: 200, body: Some(serde_json::json!({"access_token": "a", "refresh_token": "r", "expires_in": 100, "token_type": "mac"})), ..Default::default() }, ..Default::default() }, "patreon_error"),
            (Faults { token: EndpointFault { fail_next: 1, status: 200, body: Some(serde_json::json!({"access_token": "a", "expires_in": 100, "token_type": "Bearer"})), ..Default::default() }, ..Default::default() }, "patreon_error"),
            (Faults { identity: fault(EndpointFault { status: 503, ..Default::default() }), ..Default::default() }, "patreon_unavailable"),
            // Last: a 429 pauses every call for its Retry-After, so later cases would not reach Patreon.
            (Faults { token: fault(EndpointFault { status: 429, retry_after_secs: Some(9), ..Default::default() }), ..Default::default() }, "patreon_unavailable"),
        ];
        for (faults, reason) in cases {
            app.mock.set_faults(faults.clone());
            let (authorize, state_cookie) = app.start_login(None).await;
            let callback = app.consent(&authorize, &id).await;
            let code = query_param(&callback, "code").unwrap();
            let started = std::time::Instant::now();
            let response = app.callback(&callback, &state_cookie).await;
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "no answer within the timeout");
            assert_eq!(response.status(), StatusCode::FOUND, "{faults:?}");
            let landing = assert_no_sign_in(&app, response).await;
            assert_eq!(landing, format!("{FRONTEND}/?auth=error&reason={reason}"), "{faults:?}");
            assert!(!landing.contains(&code));
            let replay = app.callback(&callback, &state_cookie).await;
            assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "state must be spent after a failure");
            assert_eq!(app.count("users").await, 0, "{faults:?}");
            assert_eq!(app.count("sessions").await, 0);
        }
        // Within the 429's pause a sign-in answers at once, without calling Patreon, rather
        // than hang until the pause ends.
        app.mock.set_faults(Faults::default());
        let grants = app.mock.stats().token_code_grants;
        let (authorize, state_cookie) = app.start_login(None).await;
        let callback = app.consent(&authorize, &id).await;
        let started = std::time::Instant::now();
        let response = app.callback(&callback, &state_cookie).await;
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "a sign-in hung through the pause");
        let landing = assert_no_sign_in(&app, response).await;
        assert_eq!(landing, format!("{FRONTEND}/?auth=error&reason=patreon_unavailable"));
        assert_eq!(app.mock.stats().token_code_grants, grants, "Patreon was not called during the pause");
    }

    async fn the_authorize_redirect_and_token_request_carry_the_exact_redirect_uri(app) {
        let id = app.active_patron("1601");
        let (authorize, _) = app.start_login(None).await;
        let expected_redirect = app.settings.patreon.redirect_uri.to_string();
        assert!(authorize.starts_with(&format!("{}/oauth2/authorize?", app.mock.base_url())));
        assert_eq!(query_param(&authorize, "redirect_uri").unwrap(), expected_redirect);
        assert_eq!(query_param(&authorize, "response_type").unwrap(), "code");
        assert_eq!(query_param(&authorize, "client_id").unwrap(), "mock-client-id");
        assert_eq!(query_param(&authorize, "scope").unwrap(), "identity identity[email]");
        let state = query_param(&authorize, "state").unwrap();
        assert!(state.len() >= 43, "state has at least 256 bits of base64url: {}", state.len());
        let (second, _) = app.start_login(None).await;
        assert_ne!(query_param(&second, "state").unwrap(), state);

        let signed_in = app.sign_in(&id).await;
        assert_eq!(app.mock.stats().last_token_request_redirect_uri.as_deref(), Some(expected_redirect.as_str()));
        assert!(!signed_in.location.contains(&signed_in.jwt));
    }

    async fn every_sign_in_issues_a_fresh_token_and_clears_the_state_cookie(app) {
        let id = app.active_patron("1701");
        let first = app.sign_in(&id).await;
        // A browser that still carries an old (or planted) auth_token signs in again.
        let (authorize, state_cookie) = app.start_login(None).await;
        let callback = app.consent(&authorize, &id).await;
        let response = app
            .client
            .get(&callback)
            .header(header::COOKIE, format!("{state_cookie}; auth_token={}", first.jwt))
            .send()
            .await
            .unwrap();
        let cookies = set_cookies(&response);
        let second = cookie_value(&cookies, "auth_token").unwrap();
        assert_ne!(second, first.jwt);
        let state_clear = cookies.iter().find(|c| c.starts_with("__Host-oauth_state=")).expect("state cookie cleared");
        assert!(state_clear.contains("Max-Age=0"), "{state_clear}");
        let jti = |t: &str| unverified_claims(t)["jti"].as_str().unwrap().to_owned();
        assert_ne!(jti(&first.jwt), jti(&second));
        assert_ne!(unverified_claims(&first.jwt)["sid"], unverified_claims(&second)["sid"]);
    }
}

/// Payloads in the spirit of oauth2-proxy's `testdata/openredirects.txt`, plus T27's in
/// docs/security-checklist.md §10.
const OPEN_REDIRECTS: &[&str] = &[
    "https://app.example.com.evil.com",
    "https://evil.com#@app.example.com",
    "javascript:alert(1)",
    "//evil.com",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\/evil.com",
    "/\\/evil.com",
    "\\\\evil.com",
    "/%09/evil.com",
    "/%5cevil.com",
    "/%2f%2fevil.com",
    "%2f%2fevil.com",
    "/%252f%252fevil.com",
    "https:evil.com",
    "http://evil.com",
    "https://evil.com",
    "//evil.com/%2e%2e",
    "/\t/evil.com",
    "/\r\n/evil.com",
    "evil.com",
    "@evil.com",
    "//google.com%2f%2e%2e",
    "/https://evil.com",
    "data:text/html,<script>alert(1)</script>",
    "//;@evil.com",
    "/ /evil.com",
    "//evil%00.com",
    "http:/evil.com",
    "\u{3002}evil.com",
    "//evil\u{3002}com",
];

on_both_backends! {
    setup = TestApp::spawn;

    async fn open_redirect_payloads_are_refused_at_the_start_of_the_flow(app) {
        let mut accepted = 0;
        for payload in OPEN_REDIRECTS {
            let mut url = reqwest::Url::parse(&app.url("/api/auth/patreon/login")).unwrap();
            url.query_pairs_mut().append_pair("return_to", payload);
            let response = app.client.get(url).send().await.unwrap();
            let status = response.status();
            if status == StatusCode::FOUND {
                // Accepted only if it stays a path on our frontend.
                let landing = format!("{FRONTEND}{payload}");
                let parsed = reqwest::Url::parse(&landing).unwrap();
                assert_eq!(parsed.host_str(), Some("app.example.com"), "{payload:?} accepted");
                assert!(payload.starts_with('/') && !payload.starts_with("//"), "{payload:?} accepted");
                accepted += 1;
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{payload:?}");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"], "invalid_return_to");
            }
        }
        assert_eq!(app.count("oauth_states").await, accepted, "no sign-in was started for a refused payload");
        assert!(accepted <= 1, "only `/https://evil.com`, a plain path on our host, may pass");
    }
}

/// Paths whose dot segments resolve, once joined to `FRONTEND_URL`, to `//host` on our origin:
/// a path-based redirect in the frontend would then send the handoff code to that host.
const DOT_SEGMENT_REDIRECTS: &[&str] = &[
    "/..//evil.com",
    "/x/../../..//example.com",
    "/.%2e/%2e%2e//example.com",
    "/%2E%2e//evil.com?tab=1",
    "/x/..%2F%2Fevil.com",
    "/x/%2e%2e%252F%252Fevil.com",
    "/\\evil.com",
    "/%5Cevil.com",
    "/x/..%5C%5Cevil.com",
];

on_both_backends! {
    setup = TestApp::spawn;

    async fn return_to_dot_segments_that_resolve_to_another_host_are_refused(app) {
        for payload in DOT_SEGMENT_REDIRECTS {
            let mut url = reqwest::Url::parse(&app.url("/api/auth/patreon/login")).unwrap();
            url.query_pairs_mut().append_pair("return_to", payload);

            let response = app.client.get(url).send().await.unwrap();

            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{payload:?}: {}", location(&response));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "invalid_return_to", "{payload:?}");
        }
        assert_eq!(app.count("oauth_states").await, 0, "no sign-in was started for a refused payload");
    }

    async fn return_to_with_dot_segments_lands_on_the_resolved_path(app) {
        let id = app.active_patron("1901");
        for (return_to, landing) in [("/a/./b/../c?tab=1", "/a/c?tab=1&"), ("/a/%2e%2e/b", "/b?")] {
            let (authorize, state_cookie) = app.start_login(Some(return_to)).await;
            let callback = app.consent(&authorize, &id).await;

            let response = app.callback(&callback, &state_cookie).await;

            let to = location(&response);
            assert!(to.starts_with(&format!("{FRONTEND}{landing}auth=success&handoff=")), "{return_to:?} → {to}");
        }
    }
}
