//! The whole sign-in flow through the mock, and what each kind of member sees.

use patreon_mock::{MockMembership, MockTier, MockUser};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

on_both_backends! {
    setup = TestApp::spawn;

    async fn an_active_patron_signs_in_and_sees_their_paid_membership(app) {
        let id = app.active_patron("5001");
        let signed_in = app.sign_in(&id).await;

        // Lands on the frontend with a handoff code and no JWT anywhere in the URL.
        assert!(signed_in.location.starts_with(FRONTEND), "{}", signed_in.location);
        assert!(!signed_in.location.contains(&signed_in.jwt));
        assert!(signed_in.handoff().len() >= 32);

        let response = app.me_cookie(&signed_in.jwt).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["patreonId"], "5001");
        assert_eq!(me["name"], "Active Patron 5001");
        assert_eq!(me["email"], "active.patron.5001@example.com");
        assert_eq!(me["membershipActive"], true);
        assert_eq!(me["isPaidMember"], true);
        assert_eq!(me["membershipTier"], "Supporter");
        assert_eq!(me["needsRelogin"], false);
        assert_eq!(me["isTeamMember"], false);
        assert!(me["lastChecked"].is_string());
        let session_ends: chrono::DateTime<chrono::Utc> = me["sessionExpiresAt"].as_str().unwrap().parse().unwrap();
        let in_a_week = chrono::Utc::now() + chrono::Duration::hours(168);
        assert!((session_ends - in_a_week).num_seconds().abs() < 60, "{session_ends}");
        let documented = ["id", "patreonId", "email", "name", "avatarUrl", "membershipActive", "isPaidMember",
            "membershipTier", "isTeamMember", "isAdmin", "lastChecked", "needsRelogin", "sessionExpiresAt"];
        let keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.iter().all(|k| documented.contains(k)), "undocumented field in {keys:?}");

        // The same token works as a Bearer header.
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK);
    }

    async fn members_who_do_not_pay_are_signed_in_but_not_paid(app) {
        let cases = [
            (MockUser::declined_patron("6001", CAMPAIGN_ID), true), // charge declined 3 days ago: grace
            (MockUser::former_patron("6002", CAMPAIGN_ID), false),
            (MockUser::free_member("6003", CAMPAIGN_ID), false),
            (MockUser::patron_of_other_campaign("6004", "999999"), false),
            (MockUser::creator("6005"), false),
        ];
        for (user, paid) in cases {
            let id = app.add_user(user);
            let signed_in = app.sign_in(&id).await;
            let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
            assert_eq!(me["isPaidMember"], paid, "user {id}: {me}");
            assert_eq!(me["membershipActive"], paid, "user {id}: {me}");
        }
    }

    async fn signing_in_again_updates_the_same_user_by_patreon_id(app) {
        let id = app.active_patron("7001");
        app.sign_in(&id).await;
        app.mock.set_membership(&id, CAMPAIGN_ID, Some(MockMembership::former(&id, CAMPAIGN_ID)));
        let again = app.sign_in(&id).await;
        let me: Value = app.me_bearer(&again.jwt).await.json().await.unwrap();
        assert_eq!(me["isPaidMember"], false);
        assert_eq!(app.count("users").await, 1);
    }

    async fn the_same_email_on_another_patreon_account_is_a_different_user(app) {
        let mut a = MockUser::active_patron("8001", CAMPAIGN_ID);
        a.email = Some("shared@example.com".into());
        let mut b = MockUser::free_member("8002", CAMPAIGN_ID);
        b.email = Some("shared@example.com".into());
        app.add_user(a);
        app.add_user(b);
        let signed_a = app.sign_in("8001").await;
        let signed_b = app.sign_in("8002").await;
        let me_a: Value = app.me_bearer(&signed_a.jwt).await.json().await.unwrap();
        let me_b: Value = app.me_bearer(&signed_b.jwt).await.json().await.unwrap();
        assert_eq!(me_a["patreonId"], "8001");
        assert_eq!(me_b["patreonId"], "8002");
        assert_ne!(me_a["id"], me_b["id"]);
        assert_eq!(me_b["isPaidMember"], false);
        assert_eq!(app.count("users").await, 2);
    }

    async fn return_to_is_honoured_on_the_frontend(app) {
        let id = app.active_patron("9001");
        let (authorize, state_cookie) = app.start_login(Some("/posts/42?tab=comments")).await;
        let callback = app.consent(&authorize, &id).await;
        let response = app.callback(&callback, &state_cookie).await;
        let landing = location(&response);
        assert!(landing.starts_with(&format!("{FRONTEND}/posts/42?tab=comments&auth=success&handoff=")), "{landing}");
    }

    async fn a_handoff_code_buys_one_bearer_token(app) {
        let id = app.active_patron("9101");
        let signed_in = app.sign_in(&id).await;
        let body = serde_json::json!({ "handoff": signed_in.handoff() });
        let response = app.client.post(app.url("/api/auth/token")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let exchanged: Value = response.json().await.unwrap();
        let token = exchanged["token"].as_str().unwrap().to_owned();
        assert_ne!(token, signed_in.jwt);
        assert!(exchanged["expiresAt"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap() > chrono::Utc::now());
        assert_eq!(app.me_bearer(&token).await.status(), StatusCode::OK);

        let again = app.client.post(app.url("/api/auth/token")).json(&body).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert_eq!(again.json::<Value>().await.unwrap()["error"], "invalid_handoff");
    }

    async fn a_member_on_a_paid_tier_without_an_amount_still_counts(app) {
        let mut user = MockUser::new("9201", "Tiered");
        let mut m = MockMembership::active("9201", CAMPAIGN_ID, MockTier::new("777", "Gold", 1500));
        m.currently_entitled_amount_cents = 0;
        user = user.with_membership(m);
        app.add_user(user);
        let me: Value = app.me_bearer(&app.sign_in("9201").await.jwt).await.json().await.unwrap();
        assert_eq!(me["isPaidMember"], true);
        assert_eq!(me["membershipTier"], "Gold");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_not_verified_for_longer_than_stale_after_days_no_longer_counts_as_paid() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("AUTH_CACHE_TTL_MS", "0"),
    )
    .await;
    let id = app.active_patron("9301");
    let signed_in = app.sign_in(&id).await;
    use sea_orm::{EntityTrait, sea_query::Expr};
    let long_ago = chrono::Utc::now() - chrono::Duration::days(36);
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::LastChecked, Expr::value(long_ago))
        .exec(&app.db)
        .await
        .unwrap();
    let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
    assert_eq!(
        me["membershipActive"], true,
        "the last verified outcome is still reported"
    );
    assert_eq!(
        me["isPaidMember"], false,
        "but it is too old to grant access (STALE_AFTER_DAYS=35)"
    );
}
