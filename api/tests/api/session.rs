//! The signed-in member's session: logout (T13, T14), refresh-token rotation and reuse (T16),
//! the member's Patreon token behind a refresh (T15, T17) and the CSRF guard on cookie calls (T20).
//! Bearer clients' refresh tokens and what no longer renews a sign-in are in `refresh_tokens`.

use chrono::{Duration, Utc};
use entity::{session, user};
use patreon_mock::{EndpointFault, Faults};
use reqwest::{Response, StatusCode, header};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;
use test_support::jwt::unverified_claims;

use crate::helpers::*;

const EVIL: &str = "https://evil.example";

pub(crate) fn sid(jwt: &str) -> String {
    unverified_claims(jwt)["sid"]
        .as_str()
        .expect("sid claim")
        .to_owned()
}

/// The `Set-Cookie` line for cookie `name`.
pub(crate) fn set_cookie_line(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies
        .iter()
        .find(|c| c.split('=').next().map(str::trim) == Some(name))
        .cloned()
}

pub(crate) async fn user_row(app: &TestApp, patreon_id: &str) -> user::Model {
    user::Entity::find()
        .filter(user::Column::PatreonId.eq(patreon_id))
        .one(&app.db)
        .await
        .unwrap()
        .expect("user row")
}

pub(crate) async fn session_row(app: &TestApp, session_id: &str) -> session::Model {
    session::Entity::find_by_id(session_id)
        .one(&app.db)
        .await
        .unwrap()
        .expect("session row")
}

/// Makes the member's stored Patreon token expire `from_now` from now.
pub(crate) async fn patreon_token_expires_in(app: &TestApp, patreon_id: &str, from_now: Duration) {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenExpiresAt,
            Expr::value(Utc::now() + from_now),
        )
        .filter(user::Column::PatreonId.eq(patreon_id))
        .exec(&app.db)
        .await
        .unwrap();
}

/// A Bearer client's renewal: its refresh token in the body, nothing else.
pub(crate) async fn refresh_with_token(app: &TestApp, refresh_token: &str) -> Response {
    app.client
        .post(app.url("/api/auth/refresh"))
        .json(&serde_json::json!({ "refreshToken": refresh_token }))
        .send()
        .await
        .unwrap()
}

/// A Bearer-mode frontend after sign-in: the JWT and refresh token it traded the handoff for.
pub(crate) struct BearerClient {
    pub jwt: String,
    pub refresh_token: String,
}

impl BearerClient {
    pub(crate) async fn sign_in(app: &TestApp, patreon_id: &str) -> Self {
        let signed_in = app.sign_in(patreon_id).await;
        let body = serde_json::json!({ "handoff": signed_in.handoff() });
        let response = app
            .client
            .post(app.url("/api/auth/token"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        Self {
            jwt: tokens["token"].as_str().expect("token").to_owned(),
            refresh_token: tokens["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned(),
        }
    }

    /// Renews with the current refresh token and keeps what a 200 hands back.
    pub(crate) async fn renew(&mut self, app: &TestApp) -> (StatusCode, Value) {
        let response = refresh_with_token(app, &self.refresh_token).await;
        let status = response.status();
        assert!(
            set_cookies(&response).is_empty(),
            "no cookies for Bearer clients: {:?}",
            set_cookies(&response)
        );
        let body: Value = if status == StatusCode::NO_CONTENT {
            Value::Null
        } else {
            response.json().await.unwrap()
        };
        if status == StatusCode::OK {
            self.jwt = body["token"].as_str().expect("token").to_owned();
            self.refresh_token = body["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .to_owned();
        }
        (status, body)
    }
}

pub(crate) async fn refresh_cookie(app: &TestApp, refresh: &str) -> Response {
    app.same_site_post("/api/auth/refresh", &format!("auth_refresh={refresh}"))
        .send()
        .await
        .unwrap()
}

async fn logout_bearer(app: &TestApp, jwt: &str) -> Response {
    app.client
        .post(app.url("/api/auth/logout"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

/// 401 with the standard body (`error` = `code`) and `WWW-Authenticate: Bearer`.
pub(crate) async fn assert_401(response: Response, code: &str, what: &str) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        "Bearer",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    assert!(body["message"].is_string(), "{what}: {body}");
}

/// The same token with its signature segment re-encoded: `=` padding, and the unused low bits
/// of the last base64url character flipped. Both decode to the same MAC in a lax decoder.
fn re_encodings(jwt: &str) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    // 32 bytes = 43 characters, the last carrying 2 unused bits.
    assert_eq!(signature.len(), 43);
    let last = *signature.as_bytes().last().unwrap();
    let index = ALPHABET.iter().position(|&c| c == last).unwrap();
    let mut variants = vec![format!("{jwt}="), format!("{signed}.{signature}==")];
    for flip in [1, 2, 3] {
        let flipped = ALPHABET[index ^ flip] as char;
        variants.push(format!(
            "{signed}.{}{flipped}",
            &signature[..signature.len() - 1]
        ));
    }
    variants
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn after_logout_by_bearer_the_token_is_refused_however_it_is_presented(app) {
        let id = app.active_patron("13001");
        let signed_in = app.sign_in(&id).await;
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK);

        let response = logout_bearer(&app, &signed_in.jwt).await;

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_401(app.me_bearer(&signed_in.jwt).await, "unauthorized", "Bearer after logout").await;
        assert_401(app.me_cookie(&signed_in.jwt).await, "unauthorized", "cookie after logout").await;
        for variant in re_encodings(&signed_in.jwt) {
            assert_401(app.me_bearer(&variant).await, "unauthorized", &variant).await;
            assert_401(app.me_cookie(&variant).await, "unauthorized", &variant).await;
        }
        // The session itself ended: its refresh cookie renews nothing.
        assert_401(refresh_cookie(&app, &signed_in.refresh_cookie).await, "unauthorized", "refresh").await;
        assert!(session_row(&app, &sid(&signed_in.jwt)).await.revoked_at.is_some());
    }

    async fn after_logout_by_cookie_the_token_is_refused_by_bearer_and_by_cookie(app) {
        let id = app.active_patron("13002");
        let signed_in = app.sign_in(&id).await;
        let cookies = format!("auth_token={}; auth_refresh={}", signed_in.jwt, signed_in.refresh_cookie);

        let response = app.same_site_post("/api/auth/logout", &cookies).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_401(app.me_bearer(&signed_in.jwt).await, "unauthorized", "Bearer after logout").await;
        assert_401(app.me_cookie(&signed_in.jwt).await, "unauthorized", "cookie after logout").await;
        assert_401(refresh_cookie(&app, &signed_in.refresh_cookie).await, "unauthorized", "refresh").await;
    }

    async fn logout_with_only_the_refresh_cookie_still_ends_the_session(app) {
        let id = app.active_patron("13003");
        let signed_in = app.sign_in(&id).await;
        let other = app.sign_in(&id).await;

        let response = app
            .same_site_post("/api/auth/logout", &format!("auth_refresh={}", signed_in.refresh_cookie))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_401(app.me_bearer(&signed_in.jwt).await, "unauthorized", "JWT of the ended session").await;
        // Only that session: the member's other sign-in lives on.
        assert_eq!(app.me_bearer(&other.jwt).await.status(), StatusCode::OK);
    }

    async fn logout_clears_both_cookies_with_the_path_they_were_set_with(app) {
        let id = app.active_patron("14001");
        let signed_in = app.sign_in(&id).await;

        let response = logout_bearer(&app, &signed_in.jwt).await;

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let cleared = set_cookies(&response);
        for name in ["auth_token", "auth_refresh"] {
            let set = set_cookie_line(&signed_in.set_cookies, name).expect("set at sign-in");
            let clear = set_cookie_line(&cleared, name).unwrap_or_else(|| panic!("{name} not cleared: {cleared:?}"));
            assert_eq!(cookie_value(&cleared, name).as_deref(), Some(""), "{clear}");
            assert_eq!(cookie_attribute(&clear, "Max-Age").as_deref(), Some("0"), "{clear}");
            assert_eq!(cookie_attribute(&clear, "Path"), cookie_attribute(&set, "Path"), "{clear} vs {set}");
            assert_eq!(cookie_attribute(&clear, "Domain"), None, "{clear}");
            assert!(cookie_attribute(&clear, "Secure").is_some(), "{clear}");
            assert!(cookie_attribute(&clear, "HttpOnly").is_some(), "{clear}");
        }
        assert_eq!(cookie_attribute(&set_cookie_line(&cleared, "auth_token").unwrap(), "Path").as_deref(), Some("/"));
        assert_eq!(
            cookie_attribute(&set_cookie_line(&cleared, "auth_refresh").unwrap(), "Path").as_deref(),
            Some("/api/auth")
        );
    }

    async fn logout_by_get_is_not_allowed(app) {
        let id = app.active_patron("14002");
        let signed_in = app.sign_in(&id).await;

        let response = app.client.get(app.url("/api/auth/logout")).bearer_auth(&signed_in.jwt).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed");
        assert!(body["message"].is_string());
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK, "GET must not sign out");
    }

    async fn refreshing_with_the_cookie_rotates_it_and_the_new_jwt_works(app) {
        let id = app.active_patron("16001");
        let signed_in = app.sign_in(&id).await;

        let response = refresh_cookie(&app, &signed_in.refresh_cookie).await;

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let cookies = set_cookies(&response);
        let rotated = cookie_value(&cookies, "auth_refresh").expect("rotated refresh cookie");
        assert_ne!(rotated, signed_in.refresh_cookie);
        assert!(rotated.starts_with(&format!("{}.", sid(&signed_in.jwt))), "{rotated}");
        let line = set_cookie_line(&cookies, "auth_refresh").unwrap();
        assert_eq!(cookie_attribute(&line, "Path").as_deref(), Some("/api/auth"), "{line}");
        assert!(cookie_attribute(&line, "HttpOnly").is_some() && cookie_attribute(&line, "Secure").is_some(), "{line}");
        let cookie_jwt = cookie_value(&cookies, "auth_token").expect("auth_token cookie");
        let body: Value = response.json().await.unwrap();
        // Scripts on the page never see the JWT or the refresh token: they live in httpOnly cookies.
        assert_eq!(body.get("token"), None, "{body}");
        assert_eq!(body.get("refreshToken"), None, "{body}");
        assert!(!body.to_string().contains(&cookie_jwt) && !body.to_string().contains(&rotated), "{body}");
        assert_eq!(body["message"], "Session renewed.");
        let expires_at: chrono::DateTime<chrono::Utc> = body["expiresAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires_at.timestamp(), unverified_claims(&cookie_jwt)["exp"].as_i64().unwrap(), "expiresAt is the JWT's exp");
        assert_ne!(cookie_jwt, signed_in.jwt);
        assert_eq!(unverified_claims(&cookie_jwt)["sid"], unverified_claims(&signed_in.jwt)["sid"]);
        assert_ne!(unverified_claims(&cookie_jwt)["jti"], unverified_claims(&signed_in.jwt)["jti"]);
        assert_eq!(app.me_bearer(&cookie_jwt).await.status(), StatusCode::OK);
        assert_eq!(app.me_cookie(&cookie_jwt).await.status(), StatusCode::OK);

        // The new refresh token is the current one and rotates in turn.
        let again = refresh_cookie(&app, &rotated).await;
        assert_eq!(again.status(), StatusCode::OK);
        let next = cookie_value(&set_cookies(&again), "auth_refresh").expect("rotated again");
        assert_ne!(next, rotated);
    }

    async fn a_replaced_refresh_token_within_the_grace_window_is_answered_without_issuing_anything(app) {
        let id = app.active_patron("16003");
        let signed_in = app.sign_in(&id).await;
        let first = refresh_cookie(&app, &signed_in.refresh_cookie).await;
        assert_eq!(first.status(), StatusCode::OK);
        let current = cookie_value(&set_cookies(&first), "auth_refresh").unwrap();

        let current_jwt = cookie_value(&set_cookies(&first), "auth_token").unwrap();
        let before = session_row(&app, &sid(&signed_in.jwt)).await;

        // A second tab still holding the replaced token: the first tab's cookies are current.
        let response = refresh_cookie(&app, &signed_in.refresh_cookie).await;

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(set_cookies(&response).is_empty(), "nothing new minted: {:?}", set_cookies(&response));
        assert!(response.text().await.unwrap().is_empty());
        assert_eq!(session_row(&app, &sid(&signed_in.jwt)).await, before, "nothing rotated or revoked");
        assert_eq!(app.me_cookie(&current_jwt).await.status(), StatusCode::OK);
        // The current token was not disturbed.
        assert_eq!(refresh_cookie(&app, &current).await.status(), StatusCode::OK);
    }

    async fn a_replaced_refresh_token_after_the_grace_window_ends_the_whole_session(app) {
        let id = app.active_patron("16004");
        let signed_in = app.sign_in(&id).await;
        let other = app.sign_in(&id).await;
        let first = refresh_cookie(&app, &signed_in.refresh_cookie).await;
        assert_eq!(first.status(), StatusCode::OK);
        let cookies = set_cookies(&first);
        let current = cookie_value(&cookies, "auth_refresh").unwrap();
        let renewed_jwt = cookie_value(&cookies, "auth_token").unwrap();
        let session_id = sid(&signed_in.jwt);
        session::Entity::update_many()
            .col_expr(session::Column::RefreshRotatedAt, Expr::value(Utc::now() - Duration::minutes(2)))
            .filter(session::Column::Id.eq(&session_id))
            .exec(&app.db)
            .await
            .unwrap();

        let response = refresh_cookie(&app, &signed_in.refresh_cookie).await;

        assert_401(response, "unauthorized", "replayed refresh token").await;
        assert_401(refresh_cookie(&app, &current).await, "unauthorized", "current refresh token").await;
        for jwt in [&signed_in.jwt, &renewed_jwt] {
            assert_401(app.me_bearer(jwt).await, "unauthorized", "access token of the family").await;
        }
        assert!(session_row(&app, &session_id).await.revoked_at.is_some());
        assert_eq!(app.me_bearer(&other.jwt).await.status(), StatusCode::OK, "other sessions live on");
    }

    async fn a_wrong_refresh_secret_for_a_live_session_is_refused_and_signs_nobody_out(app) {
        // The session id is in every JWT, expired ones too: guessing at it must not be theft.
        let id = app.active_patron("16005");
        let signed_in = app.sign_in(&id).await;
        let session_id = sid(&signed_in.jwt);
        let rotated = refresh_cookie(&app, &signed_in.refresh_cookie).await;
        let current = cookie_value(&set_cookies(&rotated), "auth_refresh").unwrap();
        let before = session_row(&app, &session_id).await;
        let wrong = [
            format!("{session_id}.{}", "f".repeat(43)),
            // The genuine previous token with its last character changed.
            format!("{}{}", &signed_in.refresh_cookie[..signed_in.refresh_cookie.len() - 1], if signed_in.refresh_cookie.ends_with('A') { 'B' } else { 'A' }),
            format!("{session_id}."),
            format!("{session_id}.{}", before.refresh_token_hash),
        ];

        for token in &wrong {
            assert_401(refresh_cookie(&app, token).await, "unauthorized", token).await;
            assert_401(refresh_with_token(&app, token).await, "unauthorized", token).await;
        }

        assert_eq!(session_row(&app, &session_id).await, before, "nothing rotated or revoked");
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK);
        assert_eq!(refresh_cookie(&app, &current).await.status(), StatusCode::OK);
    }

    async fn unknown_or_malformed_refresh_tokens_are_refused_and_change_nothing(app) {
        let id = app.active_patron("16006");
        let signed_in = app.sign_in(&id).await;
        let unknown_session = uuid::Uuid::new_v4().simple().to_string();
        let junk = [
            format!("{unknown_session}.{}", "a".repeat(43)),
            "no-dot-at-all".to_owned(),
            format!("{}.x", &sid(&signed_in.jwt)[..31]),
            "x".repeat(300),
        ];

        for token in &junk {
            assert_401(refresh_cookie(&app, token).await, "unauthorized", token).await;
        }

        assert!(session_row(&app, &sid(&signed_in.jwt)).await.revoked_at.is_none());
        assert_eq!(refresh_cookie(&app, &signed_in.refresh_cookie).await.status(), StatusCode::OK);
    }

    async fn revoking_the_app_at_patreon_ends_every_session_of_the_member(app) {
        // T15: `invalid_grant` on the Patreon refresh.
        let id = app.active_patron("15001");
        let first = app.sign_in(&id).await;
        let second = app.sign_in(&id).await;
        let renewal = refresh_cookie(&app, &first.refresh_cookie).await;
        let renewed = cookie_value(&set_cookies(&renewal), "auth_token").expect("renewed JWT");
        assert_eq!(app.mock.stats().token_refresh_grants, 0);
        app.mock.revoke_app(&id);
        patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;

        let response = refresh_cookie(&app, &second.refresh_cookie).await;

        assert_401(response, "needs_relogin", "refresh after invalid_grant").await;
        assert_eq!(app.mock.stats().token_refresh_grants, 1);
        for jwt in [&first.jwt, &second.jwt, &renewed] {
            assert_401(app.me_bearer(jwt).await, "unauthorized", "earlier JWT by Bearer").await;
            assert_401(app.me_cookie(jwt).await, "unauthorized", "earlier JWT by cookie").await;
        }
        for refresh in [&first.refresh_cookie, &second.refresh_cookie] {
            assert_401(refresh_cookie(&app, refresh).await, "unauthorized", "earlier refresh cookie").await;
        }
        let row = user_row(&app, &id).await;
        assert!(row.needs_relogin);
        assert_eq!(row.access_token, None);
        assert_eq!(row.refresh_token, None);

        // Signing in with Patreon again is the way back.
        let again = app.sign_in(&id).await;
        let me: Value = app.me_bearer(&again.jwt).await.json().await.unwrap();
        assert_eq!(me["needsRelogin"], false, "{me}");
    }

    async fn an_expiring_patreon_token_is_refreshed_when_the_session_is_renewed(app) {
        let id = app.active_patron("15101");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let before = user_row(&app, &id).await;
        app.mock.expire_access_tokens(&id);
        patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;

        let (status, body) = client.renew(&app).await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["message"], "Session renewed.");
        assert_eq!(app.mock.stats().token_refresh_grants, 1);
        let after = user_row(&app, &id).await;
        assert_eq!(after.token_version, before.token_version + 1);
        assert_ne!(after.access_token, before.access_token);
        assert_ne!(after.refresh_token, before.refresh_token);
        assert!(after.token_expires_at.unwrap() > Utc::now() + Duration::days(1));
        assert_eq!(after.token_refresh_lease_until, None);
        assert!(!after.needs_relogin);

        // Now far from expiry: the next renewal leaves Patreon alone.
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        assert_eq!(app.mock.stats().token_refresh_grants, 1);
    }

    async fn a_patreon_token_far_from_expiry_is_left_alone_on_renewal(app) {
        let id = app.active_patron("15102");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let before = user_row(&app, &id).await;

        let (status, _) = client.renew(&app).await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(app.mock.stats().token_refresh_grants, 0);
        assert_eq!(user_row(&app, &id).await, before);
    }

    async fn a_transient_patreon_failure_still_renews_the_session(app) {
        let id = app.active_patron("15103");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let me_before: Value = app.me_bearer(&client.jwt).await.json().await.unwrap();
        let faults = [
            EndpointFault { fail_next: 1, status: 503, ..EndpointFault::default() },
            EndpointFault { fail_next: 1, status: 429, retry_after_secs: Some(1), ..EndpointFault::default() },
            // Longer than PATREON_TIMEOUT_SECS (2 s).
            EndpointFault { fail_next: 1, status: 500, hang_ms: 3_000, ..EndpointFault::default() },
        ];
        for (n, fault) in faults.into_iter().enumerate() {
            let before = user_row(&app, &id).await;
            patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;
            app.mock.set_faults(Faults { token: fault.clone(), ..Faults::default() });

            let (status, body) = client.renew(&app).await;

            assert_eq!(status, StatusCode::OK, "{fault:?}");
            assert!(body["message"].as_str().unwrap().contains("Patreon"), "{fault:?}: {body}");
            assert_eq!(app.me_bearer(&client.jwt).await.status(), StatusCode::OK);
            assert_eq!(app.mock.stats().token_refresh_grants, n as u64 + 1, "{fault:?}");
            let after = user_row(&app, &id).await;
            assert_eq!(after.token_version, before.token_version, "{fault:?}");
            assert_eq!(after.refresh_token, before.refresh_token, "{fault:?}");
            assert_eq!(after.token_refresh_lease_until, None, "lease released after {fault:?}");
            assert!(!after.needs_relogin, "{fault:?}");
        }
        let me_after: Value = app.me_bearer(&client.jwt).await.json().await.unwrap();
        for field in ["membershipActive", "isPaidMember", "membershipTier", "needsRelogin"] {
            assert_eq!(me_after[field], me_before[field], "{field}");
        }

        // Patreon is back: the postponed refresh happens on the next renewal.
        app.mock.set_faults(Faults::default());
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        assert_eq!(app.mock.stats().token_refresh_grants, 4);
        assert!(user_row(&app, &id).await.token_expires_at.unwrap() > Utc::now() + Duration::days(1));
    }

    async fn twenty_parallel_renewals_spend_the_patreon_refresh_token_once(app) {
        // T17: twenty sign-ins of one member (tabs, devices) renewing at the same moment.
        let id = app.active_patron("17001");
        let mut sign_ins = Vec::new();
        for _ in 0..20 {
            sign_ins.push(app.sign_in(&id).await);
        }
        let before = user_row(&app, &id).await;
        patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;
        // A slow Patreon widens the window in which a second refresh could slip through.
        app.mock.set_faults(Faults { latency_ms: 300, ..Faults::default() });
        let grants_before = app.mock.stats().token_refresh_grants;

        let mut tasks = tokio::task::JoinSet::new();
        for signed_in in &sign_ins {
            let request = app.same_site_post("/api/auth/refresh", &format!("auth_refresh={}", signed_in.refresh_cookie));
            tasks.spawn(async move { request.send().await.unwrap().status() });
        }
        let statuses = tasks.join_all().await;

        assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
        assert_eq!(app.mock.stats().token_refresh_grants, grants_before + 1);
        let after = user_row(&app, &id).await;
        assert_eq!(after.token_version, before.token_version + 1);
        assert_eq!(after.token_refresh_lease_until, None);
        // The newest pair was stored: the next refresh spends it successfully.
        app.mock.set_faults(Faults::default());
        let mut client = BearerClient::sign_in(&app, &id).await;
        let before = user_row(&app, &id).await;
        patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        assert_eq!(app.mock.stats().token_refresh_grants, grants_before + 2);
        let last = user_row(&app, &id).await;
        assert!(!last.needs_relogin);
        assert_eq!(last.token_version, before.token_version + 1);
    }

    async fn cookie_refresh_and_logout_from_a_foreign_origin_are_refused_and_change_nothing(app) {
        // T20.
        let id = app.active_patron("20001");
        let signed_in = app.sign_in(&id).await;
        let session_id = sid(&signed_in.jwt);
        let before = session_row(&app, &session_id).await;
        let cookies = format!("auth_token={}; auth_refresh={}", signed_in.jwt, signed_in.refresh_cookie);
        let attempts = [
            ("/api/auth/refresh", Some(EVIL), true),
            ("/api/auth/refresh", Some(FRONTEND), false),
            ("/api/auth/refresh", None, false),
            ("/api/auth/logout", Some(EVIL), true),
            ("/api/auth/logout", Some(FRONTEND), false),
            ("/api/auth/logout", None, false),
        ];

        for (path, origin, with_header) in attempts {
            let what = format!("{path} origin={origin:?} X-Requested-With={with_header}");
            let mut request = app.client.post(app.url(path)).header(header::COOKIE, &cookies);
            if let Some(origin) = origin {
                request = request.header(header::ORIGIN, origin);
            }
            if with_header {
                request = request.header("X-Requested-With", "fetch");
            }
            let response = request.send().await.unwrap();

            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
            assert!(set_cookies(&response).is_empty(), "{what}: {:?}", set_cookies(&response));
            if origin == Some(EVIL) {
                assert!(!response.headers().contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN), "{what}");
            }
            let body: Value = response.json().await.unwrap();
            if with_header {
                // A foreign Origin is stopped by CORS or by the CSRF guard, whichever sees it first.
                assert!(["forbidden", "csrf_rejected"].contains(&body["error"].as_str().unwrap()), "{what}: {body}");
            } else {
                assert_eq!(body["error"], "csrf_rejected", "{what}: {body}");
            }
        }

        // The JWT alone in a cookie renews nothing either.
        let cookie_jwt = app
            .client
            .post(app.url("/api/auth/refresh"))
            .header(header::COOKIE, format!("auth_token={}", signed_in.jwt))
            .send()
            .await
            .unwrap();
        assert_eq!(cookie_jwt.status(), StatusCode::UNAUTHORIZED);

        assert_eq!(session_row(&app, &session_id).await, before, "nothing rotated or revoked");
        assert_eq!(app.me_cookie(&signed_in.jwt).await.status(), StatusCode::OK);
        assert_eq!(refresh_cookie(&app, &signed_in.refresh_cookie).await.status(), StatusCode::OK);
    }
}

on_both_backends! {
    setup = |backend| TestApp::spawn_with(backend, Options::default().with("JWT_EXPIRATION_HOURS", "1"));

    async fn refreshing_after_the_absolute_session_lifetime_is_refused(app) {
        let id = app.active_patron("16101");
        let signed_in = app.sign_in(&id).await;
        let session_id = sid(&signed_in.jwt);
        let created = session_row(&app, &session_id).await;
        assert!(created.expires_at <= Utc::now() + Duration::hours(1), "{:?}", created.expires_at);
        session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(Utc::now() - Duration::minutes(1)))
            .filter(session::Column::Id.eq(&session_id))
            .exec(&app.db)
            .await
            .unwrap();

        let by_cookie = refresh_cookie(&app, &signed_in.refresh_cookie).await;
        let by_token = refresh_with_token(&app, &signed_in.refresh_cookie).await;

        assert_401(by_cookie, "unauthorized", "refresh cookie past the lifetime").await;
        assert_401(by_token, "unauthorized", "refresh token past the lifetime").await;
        assert_401(app.me_bearer(&signed_in.jwt).await, "unauthorized", "me past the lifetime").await;
    }
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn a_needs_relogin_refresh_clears_the_sign_in_cookies(app) {
        // T15, the browser side.
        let id = app.active_patron("15002");
        let signed_in = app.sign_in(&id).await;
        app.mock.revoke_app(&id);
        patreon_token_expires_in(&app, &id, Duration::minutes(1)).await;
        let cookies = format!("auth_token={}; auth_refresh={}", signed_in.jwt, signed_in.refresh_cookie);

        let response = app.same_site_post("/api/auth/refresh", &cookies).send().await.unwrap();

        let cleared = set_cookies(&response);
        assert_401(response, "needs_relogin", "cookie refresh after invalid_grant").await;
        for name in ["auth_token", "auth_refresh"] {
            let set = set_cookie_line(&signed_in.set_cookies, name).unwrap();
            let line = set_cookie_line(&cleared, name).unwrap_or_else(|| panic!("{name} not cleared: {cleared:?}"));
            assert_eq!(cookie_value(&cleared, name).as_deref(), Some(""), "{line}");
            assert_eq!(cookie_attribute(&line, "Max-Age").as_deref(), Some("0"), "{line}");
            assert_eq!(cookie_attribute(&line, "Path"), cookie_attribute(&set, "Path"), "{line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_clears_the_cookies_on_the_configured_domain() {
    // T14 with COOKIE_DOMAIN.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("COOKIE_DOMAIN", "example.com"),
    )
    .await;
    let id = app.active_patron("14101");
    let signed_in = app.sign_in(&id).await;
    let cookies = format!(
        "auth_token={}; auth_refresh={}",
        signed_in.jwt, signed_in.refresh_cookie
    );

    let response = app
        .same_site_post("/api/auth/logout", &cookies)
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let cleared = set_cookies(&response);
    for name in ["auth_token", "auth_refresh"] {
        let set = set_cookie_line(&signed_in.set_cookies, name).unwrap();
        let clear =
            set_cookie_line(&cleared, name).unwrap_or_else(|| panic!("{name}: {cleared:?}"));
        assert_eq!(
            cookie_attribute(&set, "Domain").as_deref(),
            Some("example.com"),
            "{set}"
        );
        assert_eq!(
            cookie_attribute(&clear, "Domain"),
            cookie_attribute(&set, "Domain"),
            "{clear}"
        );
        assert_eq!(
            cookie_attribute(&clear, "Path"),
            cookie_attribute(&set, "Path"),
            "{clear}"
        );
        assert_eq!(
            cookie_attribute(&clear, "Max-Age").as_deref(),
            Some("0"),
            "{clear}"
        );
    }
    assert_401(
        app.me_cookie(&signed_in.jwt).await,
        "unauthorized",
        "after logout",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_a_foreign_origin_gets_no_cors_grant() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header(header::ORIGIN, EVIL)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "x-requested-with")
            .send()
            .await
            .unwrap();

        let headers = response.headers();
        assert!(
            !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            "{path}: {headers:?}"
        );
        assert!(
            !headers.contains_key(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            "{path}: {headers:?}"
        );
        assert!(!response.status().is_success(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_the_frontend_is_allowed_with_credentials() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    for path in ["/api/auth/refresh", "/api/auth/logout"] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header(header::ORIGIN, FRONTEND)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "x-requested-with")
            .send()
            .await
            .unwrap();

        assert!(response.status().is_success(), "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], FRONTEND);
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("x-requested-with"), "{allowed}");
    }
}
