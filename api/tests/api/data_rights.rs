//! Data rights: an admin exports everything stored about a member (and no secret), and erases
//! them (every row, their sessions at once, nobody else's rows).

use domain::infra::crypto::token_aad;
use reqwest::{StatusCode, header};
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use serde_json::Value;

use crate::helpers::*;
use crate::webhooks::{deliver_signed, member_document, with_webhooks};

const ADMIN: &str = "9100";
const MEMBER: &str = "9101";
const OTHER: &str = "9102";

fn options() -> Options {
    with_webhooks()
        .with("ADMIN_PATREON_IDS", ADMIN)
        // A long cache: the erased member's token must be refused through invalidation.
        .with("AUTH_CACHE_TTL_MS", "60000")
}

/// A member who signed in, asked for a recheck, was part of a sweep and has a webhook
/// delivery; another member; an admin.
struct Scene {
    admin: SignedIn,
    member: SignedIn,
    member_id: i64,
    other_id: i64,
    sweep_id: i64,
}

async fn user_id(app: &TestApp, jwt: &str) -> i64 {
    let me: Value = app.me_bearer(jwt).await.json().await.unwrap();
    me["id"].as_i64().unwrap()
}

async fn scene(app: &TestApp) -> Scene {
    for id in [ADMIN, MEMBER, OTHER] {
        app.active_patron(id);
    }
    let member = app.sign_in(MEMBER).await;
    let other = app.sign_in(OTHER).await;
    let admin = app.sign_in(ADMIN).await;
    let recheck = app
        .client
        .post(app.url("/api/auth/recheck"))
        .bearer_auth(&member.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(recheck.status(), StatusCode::ACCEPTED);
    let sweep = app
        .client
        .post(app.url("/api/admin/sweeps"))
        .bearer_auth(&admin.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(sweep.status(), StatusCode::ACCEPTED);
    let sweep: Value = sweep.json().await.unwrap();
    for id in [MEMBER, OTHER] {
        let body = member_document(app, id, CAMPAIGN_ID).await;
        assert_eq!(
            deliver_signed(app, "members:update", &body).await,
            StatusCode::OK
        );
    }
    Scene {
        member_id: user_id(app, &member.jwt).await,
        other_id: user_id(app, &other.jwt).await,
        sweep_id: sweep["id"].as_i64().unwrap(),
        admin,
        member,
    }
}

/// Rows about `user_id` (Patreon id `patreon_id`), table by table.
async fn rows_about(app: &TestApp, user_id: i64, patreon_id: &str) -> Vec<(&'static str, i64)> {
    let by_user = |table: &str| format!("{table} WHERE user_id = {user_id}");
    vec![
        ("users", app.count(&format!("users WHERE id = {user_id}")).await),
        ("sessions", app.count(&by_user("sessions")).await),
        (
            "handoff_codes",
            app.count(&format!(
                "handoff_codes WHERE session_id IN (SELECT id FROM sessions WHERE user_id = {user_id})"
            ))
            .await,
        ),
        ("membership_checks", app.count(&by_user("membership_checks")).await),
        ("job_requests", app.count(&by_user("job_requests")).await),
        ("sweep_items", app.count(&by_user("sweep_items")).await),
        (
            "webhook_events",
            app.count(&format!("webhook_events WHERE patreon_user_id = '{patreon_id}'"))
                .await,
        ),
        (
            "job_leases",
            app.count(&format!("job_leases WHERE key = 'verify:{user_id}'"))
                .await,
        ),
    ]
}

async fn everything(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "sessions",
        "handoff_codes",
        "membership_checks",
        "job_requests",
        "sweep_items",
        "webhook_events",
        "job_leases",
    ] {
        counts.push(app.count(table).await);
    }
    counts
}

/// The member's Patreon tokens: as stored (ciphertexts) and in plain text.
async fn stored_tokens(app: &TestApp, user_id: i64) -> Vec<String> {
    let u = entity::user::Entity::find_by_id(user_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let cipher = &app.settings.token_cipher;
    let mut tokens = Vec::new();
    for (stored, column) in [
        (u.access_token, "access_token"),
        (u.refresh_token, "refresh_token"),
    ] {
        let stored = stored.expect("tokens stored at sign-in");
        let plain = cipher.decrypt(&stored, &token_aad(MEMBER, column)).unwrap();
        tokens.push(plain.expose_secret().to_owned());
        tokens.push(stored);
    }
    tokens
}

async fn export(app: &TestApp, jwt: &str, user_id: i64) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/admin/members/{user_id}/export")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

async fn erase(app: &TestApp, jwt: &str, user_id: i64) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/admin/members/{user_id}")))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_every_row_about_the_member_and_no_secret_on_sqlite() {
    an_export_holds_every_row_about_the_member_and_no_secret(
        TestApp::spawn_with(Backend::Sqlite, options()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_every_row_about_the_member_and_no_secret_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(options()).await {
        an_export_holds_every_row_about_the_member_and_no_secret(app).await;
    }
}

async fn an_export_holds_every_row_about_the_member_and_no_secret(app: TestApp) {
    let s = scene(&app).await;

    let response = export(&app, &s.admin.jwt, s.member_id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"member-{MEMBER}.json\"")
    );
    let text = response.text().await.unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format_version"], 1);
    assert!(json["exported_at"].is_string());
    let member = &json["member"];
    assert_eq!(member["patreon_id"], MEMBER);
    assert_eq!(member["has_patreon_tokens"], true);
    assert!(member["patreon_token_expires_at"].is_string());
    assert!(member["full_name"].is_string() && member["email"].is_string());
    assert_eq!(json["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(json["handoff_codes"].as_array().unwrap().len(), 1);
    assert_eq!(json["membership_checks"][0]["trigger"], "sign_in");
    assert_eq!(json["rechecks"].as_array().unwrap().len(), 1);
    assert_eq!(json["rechecks"][0]["trigger"], "member");
    assert_eq!(json["sweep_items"][0]["sweep_id"], s.sweep_id);
    let events = json["webhook_events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "only their own delivery: {events:?}");
    assert_eq!(
        events[0]["member_attributes"]["full_name"], member["full_name"],
        "what Patreon said about them"
    );

    for secret in stored_tokens(&app, s.member_id).await {
        assert!(!text.contains(&secret), "a Patreon token leaked");
    }
    let session = entity::session::Entity::find_by_id(json["sessions"][0]["id"].as_str().unwrap())
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    for secret in [
        &session.refresh_token_hash,
        &s.member.refresh_cookie,
        &s.member.jwt,
    ] {
        assert!(!text.contains(secret.as_str()), "a session secret leaked");
    }

    let refused = export(&app, &s.member.jwt, s.member_id).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "members are not admins"
    );
    let missing = export(&app, &s.admin.jwt, 999_999).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_member_removes_every_row_about_them_at_once_on_sqlite() {
    erasing_a_member_removes_every_row_about_them_at_once(
        TestApp::spawn_with(Backend::Sqlite, options()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_member_removes_every_row_about_them_at_once_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(options()).await {
        erasing_a_member_removes_every_row_about_them_at_once(app).await;
    }
}

async fn erasing_a_member_removes_every_row_about_them_at_once(app: TestApp) {
    let s = scene(&app).await;
    assert_eq!(
        app.me_bearer(&s.member.jwt).await.status(),
        StatusCode::OK,
        "now cached"
    );
    let other_before = rows_about(&app, s.other_id, OTHER).await;
    let before = everything(&app).await;

    // Refused requests change nothing.
    let refused = erase(&app, &s.member.jwt, s.other_id).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "members are not admins"
    );
    let missing = erase(&app, &s.admin.jwt, 999_999).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let cross_site = app
        .client
        .delete(app.url(&format!("/api/admin/members/{}", s.member_id)))
        .header(header::COOKIE, format!("auth_token={}", s.admin.jwt))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cross_site.status(),
        StatusCode::FORBIDDEN,
        "cookie without X-Requested-With"
    );
    let key = format!("verify:{}", s.member_id);
    let check = domain::work::leases::try_acquire(&app.db, &key, chrono::Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let busy = erase(&app, &s.admin.jwt, s.member_id).await;
    assert_eq!(
        busy.status(),
        StatusCode::CONFLICT,
        "a check of theirs is running"
    );
    domain::work::leases::release(&app.db, check).await.unwrap();
    assert_eq!(everything(&app).await, before, "nothing changed");

    let profile = entity::user::Entity::find_by_id(s.member_id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let erased = erase(&app, &s.admin.jwt, s.member_id).await;
    assert_eq!(erased.status(), StatusCode::OK);
    let logs = crate::logs::all();
    let logged: Vec<&str> = logs
        .lines()
        .filter(|l| {
            l.contains("member erased") && l.contains(&format!("erased_patreon_id={MEMBER}"))
        })
        .collect();
    assert!(!logged.is_empty(), "the erasure is logged");
    for line in logged {
        assert!(line.contains("admin_user_id="), "{line}");
        for personal in [profile.email.as_deref(), profile.full_name.as_deref()] {
            assert!(
                !line.contains(personal.unwrap()),
                "personal data logged: {line}"
            );
        }
    }
    let report: Value = erased.json().await.unwrap();
    for (table, rows) in [
        ("users", 1),
        ("sessions", 1),
        ("handoffCodes", 1),
        ("membershipChecks", 1),
        ("jobRequests", 1),
        ("sweepItems", 1),
        ("webhookEvents", 1),
    ] {
        assert_eq!(report[table], rows, "{table}: {report}");
    }
    for (table, rows) in rows_about(&app, s.member_id, MEMBER).await {
        assert_eq!(rows, 0, "{table} still holds rows about the erased member");
    }
    assert_eq!(rows_about(&app, s.other_id, OTHER).await, other_before);
    assert_eq!(
        app.me_bearer(&s.member.jwt).await.status(),
        StatusCode::UNAUTHORIZED,
        "their token is refused at once"
    );
    assert_eq!(app.me_bearer(&s.admin.jwt).await.status(), StatusCode::OK);
    let sweep: Value = app
        .client
        .get(app.url(&format!("/api/admin/sweeps/{}", s.sweep_id)))
        .bearer_auth(&s.admin.jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sweep["total"], 2,
        "the sweep owes one member fewer: {sweep}"
    );
    assert_eq!(
        erase(&app, &s.admin.jwt, s.member_id).await.status(),
        StatusCode::NOT_FOUND,
        "erased already"
    );

    // Patreon still knows them: a later delivery waits for a sign-in and recreates nobody.
    app.start_worker().await;
    let body = member_document(&app, MEMBER, CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &body).await,
        StatusCode::OK
    );
    test_support::eventually_true(
        "the delivery to be applied",
        std::time::Duration::from_secs(15),
        || async { app.count("webhook_events WHERE status = 'pending'").await == 0 },
    )
    .await;
    assert_eq!(
        app.count(&format!(
            "webhook_events WHERE patreon_user_id = '{MEMBER}' AND status = 'waiting'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!("users WHERE patreon_id = '{MEMBER}'"))
            .await,
        0
    );
}
