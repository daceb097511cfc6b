//! What renews a sign-in: only its refresh token (the browser's cookie, or the one a Bearer
//! client got from `POST /api/auth/token`). A stolen JWT dies at its `exp`; a replayed refresh
//! token is answered without anything new inside the grace window and ends the sign-in after it.

use chrono::{Duration, Utc};
use entity::session;
use reqwest::{StatusCode, header};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use test_support::jwt::unverified_claims;

use crate::helpers::*;
use crate::session::{
    BearerClient, assert_401, refresh_cookie, refresh_with_token, session_row, sid,
};

/// Moves the session's last rotation `ago` into the past (past the grace window, say).
async fn rotated_ago(app: &TestApp, session_id: &str, ago: Duration) {
    session::Entity::update_many()
        .col_expr(
            session::Column::RefreshRotatedAt,
            Expr::value(Utc::now() - ago),
        )
        .filter(session::Column::Id.eq(session_id))
        .exec(&app.db)
        .await
        .unwrap();
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn a_jwt_alone_renews_nothing(app) {
        let id = app.active_patron("16201");
        let signed_in = app.sign_in(&id).await;
        let session_id = sid(&signed_in.jwt);
        let before = session_row(&app, &session_id).await;

        let by_bearer = app.client.post(app.url("/api/auth/refresh")).bearer_auth(&signed_in.jwt).send().await.unwrap();
        let by_cookie = app.same_site_post("/api/auth/refresh", &format!("auth_token={}", signed_in.jwt)).send().await.unwrap();
        let by_both = app
            .same_site_post("/api/auth/refresh", &format!("auth_token={}", signed_in.jwt))
            .bearer_auth(&signed_in.jwt)
            .send()
            .await
            .unwrap();

        for (response, what) in [(by_bearer, "Bearer JWT"), (by_cookie, "auth_token cookie"), (by_both, "both")] {
            assert!(set_cookies(&response).is_empty(), "{what}: {:?}", set_cookies(&response));
            assert_401(response, "unauthorized", what).await;
        }
        assert_eq!(session_row(&app, &session_id).await, before, "nothing rotated or revoked");
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK, "the JWT itself still works until exp");
    }

    async fn a_bearer_client_renews_with_its_refresh_token_and_gets_the_next_one(app) {
        let id = app.active_patron("16202");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let (first_jwt, first_refresh) = (client.jwt.clone(), client.refresh_token.clone());
        assert!(first_refresh.starts_with(&format!("{}.", sid(&first_jwt))), "{first_refresh}");

        let (status, body) = client.renew(&app).await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_ne!(client.jwt, first_jwt);
        assert_ne!(client.refresh_token, first_refresh);
        assert_eq!(unverified_claims(&client.jwt)["sid"], unverified_claims(&first_jwt)["sid"]);
        let expires_at: chrono::DateTime<Utc> = body["expiresAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(expires_at.timestamp(), unverified_claims(&client.jwt)["exp"].as_i64().unwrap());
        assert_eq!(app.me_bearer(&client.jwt).await.status(), StatusCode::OK);
        // The new refresh token is the current one and rotates in turn.
        let second_refresh = client.refresh_token.clone();
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        assert_ne!(client.refresh_token, second_refresh);
    }

    async fn a_replaced_bearer_refresh_token_within_the_grace_window_gets_nothing_new(app) {
        let id = app.active_patron("16203");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let replaced = client.refresh_token.clone();
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        let session_id = sid(&client.jwt);
        let before = session_row(&app, &session_id).await;

        let response = refresh_with_token(&app, &replaced).await;

        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(set_cookies(&response).is_empty());
        assert!(response.text().await.unwrap().is_empty(), "no token in a grace answer");
        assert_eq!(session_row(&app, &session_id).await, before, "nothing rotated or revoked");
        assert_eq!(client.renew(&app).await.0, StatusCode::OK, "the current token is undisturbed");
    }

    async fn a_replaced_bearer_refresh_token_after_the_grace_window_ends_the_sign_in(app) {
        let id = app.active_patron("16204");
        let mut client = BearerClient::sign_in(&app, &id).await;
        let other = app.sign_in(&id).await;
        let replaced = client.refresh_token.clone();
        assert_eq!(client.renew(&app).await.0, StatusCode::OK);
        let session_id = sid(&client.jwt);
        rotated_ago(&app, &session_id, Duration::minutes(2)).await;

        let response = refresh_with_token(&app, &replaced).await;

        assert_401(response, "unauthorized", "replayed refresh token").await;
        assert!(session_row(&app, &session_id).await.revoked_at.is_some());
        assert_401(app.me_bearer(&client.jwt).await, "unauthorized", "JWT of the ended sign-in").await;
        assert_401(refresh_with_token(&app, &client.refresh_token).await, "unauthorized", "current refresh token").await;
        assert_eq!(app.me_bearer(&other.jwt).await.status(), StatusCode::OK, "other sign-ins live on");
    }

    async fn the_handoff_moves_the_refresh_chain_from_the_cookie_to_the_bearer_client(app) {
        let id = app.active_patron("16205");
        let signed_in = app.sign_in(&id).await;
        let body = json!({ "handoff": signed_in.handoff() });
        let exchanged: Value = app.client.post(app.url("/api/auth/token")).json(&body).send().await.unwrap().json().await.unwrap();
        let refresh_token = exchanged["refreshToken"].as_str().expect("refreshToken").to_owned();
        let session_id = sid(&signed_in.jwt);
        assert_eq!(sid(exchanged["token"].as_str().unwrap()), session_id, "the same sign-in");

        // The cookie was handed over, not stolen: refused, and the sign-in lives on.
        assert_401(refresh_cookie(&app, &signed_in.refresh_cookie).await, "unauthorized", "the cookie after the handoff").await;
        assert!(session_row(&app, &session_id).await.revoked_at.is_none());
        assert_eq!(refresh_with_token(&app, &refresh_token).await.status(), StatusCode::OK);
    }

    async fn a_malformed_refresh_body_is_refused_and_changes_nothing(app) {
        let id = app.active_patron("16206");
        let client = BearerClient::sign_in(&app, &id).await;
        let session_id = sid(&client.jwt);
        let before = session_row(&app, &session_id).await;
        let refresh = app.url("/api/auth/refresh");

        let bodies = [
            json!({ "refreshToken": null }),
            json!({ "refreshToken": [client.refresh_token] }),
            json!({ "refresh_token": client.refresh_token }),
            json!([client.refresh_token]),
            json!({ "refreshToken": "" }),
            json!({ "refreshToken": "x".repeat(300) }),
        ];
        for body in bodies {
            let response = app.client.post(&refresh).json(&body).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        }
        let as_text = app.client.post(&refresh).header(header::CONTENT_TYPE, "text/plain").body(client.refresh_token.clone()).send().await.unwrap();
        assert_eq!(as_text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

        assert_eq!(session_row(&app, &session_id).await, before, "nothing rotated or revoked");
        assert_eq!(refresh_with_token(&app, &client.refresh_token).await.status(), StatusCode::OK);
    }
}
