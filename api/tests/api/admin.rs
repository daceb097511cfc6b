//! Dead jobs: listed for admins only, and retried on request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

async fn dead_jobs(app: &TestApp, jwt: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url("/api/admin/dead-jobs"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_for_status(app: &TestApp, jwt: &str, location: &str, status: &str) -> Value {
    let read = || async {
        let response = app.client.get(app.url(location)).bearer_auth(jwt).send();
        response.await.unwrap().json::<Value>().await.unwrap()
    };
    let what = format!("the job to be {status}");
    test_support::eventually_matching(&what, std::time::Duration::from_secs(10), read, |job| {
        job["status"] == status
    })
    .await
}

fn with_admin() -> Options {
    Options::default().with("ADMIN_PATREON_IDS", "8802")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retries_a_recheck_that_gave_up_on_sqlite() {
    an_admin_retries_a_recheck_that_gave_up(
        TestApp::spawn_with(Backend::Sqlite, with_admin()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_retries_a_recheck_that_gave_up_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(with_admin()).await {
        an_admin_retries_a_recheck_that_gave_up(app).await;
    }
}

async fn an_admin_retries_a_recheck_that_gave_up(app: TestApp) {
    let member = app.active_patron("8801");
    app.active_patron("8802");
    let member_jwt = app.sign_in(&member).await.jwt;
    let admin_jwt = app.sign_in("8802").await.jwt;

    // Patreon refuses the check outright, so the job gives up at once.
    let refused = patreon_mock::EndpointFault {
        fail_next: 1,
        status: 400,
        ..Default::default()
    };
    app.mock.set_faults(patreon_mock::Faults {
        identity: refused,
        ..Default::default()
    });
    app.start_worker().await;
    let queued = app
        .client
        .post(app.url("/api/auth/recheck"))
        .bearer_auth(&member_jwt)
        .send()
        .await
        .unwrap();
    let location = location(&queued);
    let request_id = location.rsplit('/').next().unwrap().to_owned();
    wait_for_status(&app, &member_jwt, &location, "failed").await;

    let (status, _) = dead_jobs(&app, &member_jwt).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members are not admins");
    let (status, dead) = dead_jobs(&app, &admin_jwt).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        dead[0]["job"],
        json!({"kind": "recheck", "requestId": request_id})
    );
    assert_eq!(dead[0]["patreonId"], "8801");
    assert_eq!(dead[0]["error"], "rejected");

    let retry = |jwt: String| {
        let request = app
            .client
            .post(app.url("/api/admin/dead-jobs/retry"))
            .bearer_auth(jwt)
            .json(&dead[0]["job"]);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(retry(member_jwt.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(retry(admin_jwt.clone()).await, StatusCode::ACCEPTED);
    assert_eq!(
        retry(admin_jwt.clone()).await,
        StatusCode::NOT_FOUND,
        "already retried"
    );

    let job = wait_for_status(&app, &member_jwt, &location, "succeeded").await;
    assert_eq!(job["attempts"], 1, "a retry starts a fresh count");
    assert_eq!(dead_jobs(&app, &admin_jwt).await.1, json!([]));
}

/// Polls `GET path` with `jwt` until it answers `expected`; fails after two seconds. The api
/// caches sessions for a minute here, so only the change's notification can make it answer.
async fn answers_soon(app: &TestApp, path: &str, jwt: &str, expected: StatusCode) {
    let read = || async {
        let response = app.client.get(app.url(path)).bearer_auth(jwt).send();
        response.await.unwrap().status()
    };
    let what = format!("{path} to answer {expected}");
    test_support::eventually_matching(&what, std::time::Duration::from_secs(2), read, |status| {
        *status == expected
    })
    .await;
}

async fn is_admin(app: &TestApp, jwt: &str) -> Value {
    let me: Value = app.me_bearer(jwt).await.json().await.unwrap();
    me["isAdmin"].clone()
}

fn long_cache() -> Options {
    Options::default().with("AUTH_CACHE_TTL_MS", "60000")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_admin_role_takes_effect_through_the_auth_cache_on_sqlite() {
    the_stored_admin_role_takes_effect_through_the_auth_cache(
        TestApp::spawn_with(Backend::Sqlite, long_cache()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_admin_role_takes_effect_through_the_auth_cache_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(long_cache()).await {
        the_stored_admin_role_takes_effect_through_the_auth_cache(app).await;
    }
}

/// What `worker admins grant|revoke` and `worker sessions revoke` do, seen by an api that has
/// the member's session cached.
async fn the_stored_admin_role_takes_effect_through_the_auth_cache(app: TestApp) {
    let id = app.active_patron("8811");
    let jwt = app.sign_in(&id).await.jwt;
    assert_eq!(dead_jobs(&app, &jwt).await.0, StatusCode::FORBIDDEN);
    assert_eq!(is_admin(&app, &jwt).await, false);
    let member = domain::members::users::find_by_patreon_id(&app.db, &id.as_str().into())
        .await
        .unwrap()
        .unwrap();

    assert!(domain::auth::admins::grant(&app.db, &member).await.unwrap());
    answers_soon(&app, "/api/admin/dead-jobs", &jwt, StatusCode::OK).await;
    assert_eq!(is_admin(&app, &jwt).await, true);
    let page = app
        .client
        .get(app.url("/admin"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the dashboard opens too");

    let bootstrap = &app.settings.admin_patreon_ids;
    assert!(
        domain::auth::admins::revoke(&app.db, &member, bootstrap)
            .await
            .unwrap()
    );
    answers_soon(&app, "/api/admin/dead-jobs", &jwt, StatusCode::FORBIDDEN).await;
    assert_eq!(is_admin(&app, &jwt).await, false);

    let ended = domain::auth::sessions::revoke_all_for_user(&app.db, member.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(ended, 1);
    answers_soon(&app, "/api/auth/me", &jwt, StatusCode::UNAUTHORIZED).await;
}
