//! The admin's view of members and sweeps: listing, history, "recheck now", "sweep now".

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use crate::helpers::*;

fn with_admin() -> Options {
    Options::default().with("ADMIN_PATREON_IDS", "8902")
}

async fn get(app: &TestApp, jwt: &str, path: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, jwt: &str, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

async fn poll_until(app: &TestApp, jwt: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let read = || async { get(app, jwt, path).await.1 };
    test_support::eventually_matching(path, std::time::Duration::from_secs(15), read, done).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_search_and_filter_members_on_sqlite() {
    admins_list_search_and_filter_members(TestApp::spawn_with(Backend::Sqlite, with_admin()).await)
        .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_search_and_filter_members_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(with_admin()).await {
        admins_list_search_and_filter_members(app).await;
    }
}

async fn admins_list_search_and_filter_members(app: TestApp) {
    let paying = app.active_patron("8901");
    app.active_patron("8902");
    let free = app.add_user(patreon_mock::MockUser::free_member("8903", "1234560"));
    let member_jwt = app.sign_in(&paying).await.jwt;
    app.sign_in(&free).await;
    let admin_jwt = app.sign_in("8902").await.jwt;

    let (status, _) = get(&app, &member_jwt, "/api/admin/members").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members are not admins");
    let (status, _) = get(&app, "not-a-token", "/api/admin/members").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, all) = get(&app, &admin_jwt, "/api/admin/members").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["total"], 3);

    let (_, payers) = get(&app, &admin_jwt, "/api/admin/members?status=paying").await;
    let ids: Vec<&str> = payers["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["patreonId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"8901") && !ids.contains(&"8903"), "{payers}");

    let (_, not_paying) = get(&app, &admin_jwt, "/api/admin/members?status=not_paying").await;
    assert_eq!(not_paying["total"], 1);
    assert_eq!(not_paying["members"][0]["patreonId"], "8903");
    assert_eq!(not_paying["members"][0]["isPaidMember"], false);

    // Search is by part of the name, email or id, in any case, and treats % as a letter.
    let name = all["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["patreonId"] == "8901")
        .unwrap()["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = name[..3].to_uppercase();
    let (_, found) = get(
        &app,
        &admin_jwt,
        &format!("/api/admin/members?search={part}"),
    )
    .await;
    assert!(
        found["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["patreonId"] == "8901"),
        "{found}"
    );
    let (_, nothing) = get(&app, &admin_jwt, "/api/admin/members?search=%25").await;
    assert_eq!(nothing["total"], 0);

    // A member brought over by `worker import-profiles` says so, team flag and all.
    assert_eq!(not_paying["members"][0]["importedAt"], Value::Null);
    assert_eq!(not_paying["members"][0]["importedTeam"], false);
    let imported_at = chrono::Utc::now() - chrono::Duration::days(2);
    entity::user::Entity::update_many()
        .col_expr(entity::user::Column::ImportedAt, Expr::value(imported_at))
        .col_expr(entity::user::Column::ImportedTeam, Expr::value(true))
        .filter(entity::user::Column::PatreonId.eq("8903"))
        .exec(&app.db)
        .await
        .unwrap();
    let (_, imported) = get(&app, &admin_jwt, "/api/admin/members?search=8903").await;
    let imported = &imported["members"][0];
    assert_eq!(imported["importedTeam"], true, "{imported}");
    let shown: chrono::DateTime<chrono::Utc> =
        imported["importedAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(shown.timestamp(), imported_at.timestamp());
    assert_eq!(
        imported["isPaidMember"], false,
        "the team flag grants nothing"
    );

    let (status, _) = get(&app, &admin_jwt, "/api/admin/members?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&app, &admin_jwt, "/api/admin/members?status=rich").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_rechecks_a_member_and_sees_the_change_in_their_history() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_admin()).await;
    let member = app.active_patron("8911");
    app.active_patron("8902");
    let member_jwt = app.sign_in(&member).await.jwt;
    let admin_jwt = app.sign_in("8902").await.jwt;
    let (_, me) = get(&app, &member_jwt, "/api/auth/me").await;
    let member_id = me["id"].as_i64().unwrap();
    app.start_worker().await;

    // The pledge ends at Patreon; the admin asks for a check now.
    app.mock.set_membership(
        "8911",
        "1234560",
        Some(patreon_mock::MockMembership::former("8911", "1234560")),
    );
    let refused = post(
        &app,
        &member_jwt,
        &format!("/api/admin/members/{member_id}/recheck"),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let queued = post(
        &app,
        &admin_jwt,
        &format!("/api/admin/members/{member_id}/recheck"),
    )
    .await;
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let location = location(&queued);
    let job = poll_until(&app, &admin_jwt, &location, |j| j["status"] == "succeeded").await;
    assert_eq!(job["result"], "not_a_paying_member");

    let (status, detail) = get(&app, &admin_jwt, &format!("/api/admin/members/{member_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["member"]["isPaidMember"], false);
    let newest = &detail["checks"][0];
    assert_eq!(newest["trigger"], "admin");
    assert_eq!(newest["outcome"], "changed");
    assert_eq!(
        (newest["oldActive"].clone(), newest["newActive"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );
    assert_eq!(
        detail["checks"].as_array().unwrap().last().unwrap()["trigger"],
        "sign_in"
    );

    let (status, _) = get(&app, &admin_jwt, "/api/admin/members/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let missing = post(&app, &admin_jwt, "/api/admin/members/999999/recheck").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_a_sweep_now_and_follows_its_progress() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_admin()).await;
    for id in ["8921", "8922", "8923"] {
        app.active_patron(id);
        app.sign_in(id).await;
    }
    app.active_patron("8902");
    let admin_jwt = app.sign_in("8902").await.jwt;
    let member_jwt = app.sign_in("8921").await.jwt;

    let (status, overview) = get(&app, &admin_jwt, "/api/admin/sweeps").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(overview["schedule"], "0 0 0 1,15 * *");
    assert!(overview["nextRunAt"].is_string());
    assert_eq!(overview["sweeps"], Value::Array(vec![]));

    let refused = post(&app, &member_jwt, "/api/admin/sweeps").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let started = post(&app, &admin_jwt, "/api/admin/sweeps").await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let location = location(&started);
    let sweep: Value = started.json().await.unwrap();
    assert_eq!(
        (sweep["total"].clone(), sweep["trigger"].clone()),
        (Value::from(4), Value::from("admin"))
    );

    // One sweep at a time: asking again points at the running one.
    let again = post(&app, &admin_jwt, "/api/admin/sweeps").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(crate::helpers::location(&again), location);

    app.start_worker().await;
    let done = poll_until(&app, &admin_jwt, &location, |s| s["finishedAt"].is_string()).await;
    assert_eq!(
        (done["done"].clone(), done["failed"].clone()),
        (Value::from(4), Value::from(0))
    );
    let (_, overview) = get(&app, &admin_jwt, "/api/admin/sweeps").await;
    assert_eq!(overview["sweeps"][0]["id"], done["id"]);
}
