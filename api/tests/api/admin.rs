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
    let started = std::time::Instant::now();
    loop {
        let job: Value = app
            .client
            .get(app.url(location))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["status"] == status {
            return job;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never {status}: {job}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
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
