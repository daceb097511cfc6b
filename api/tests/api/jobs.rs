//! "Recheck my status": queued through the api, run by a worker, reported by the status
//! endpoint; on the embedded SQLite queue and on Redis.

use std::time::Duration;

use patreon_mock::MockMembership;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

async fn recheck(app: &TestApp, jwt: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/recheck"))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap()
}

async fn status(app: &TestApp, jwt: &str, location: &str) -> (StatusCode, Value) {
    let response = app
        .client
        .get(app.url(location))
        .bearer_auth(jwt)
        .send()
        .await
        .unwrap();
    let code = response.status();
    (code, response.json().await.unwrap_or(Value::Null))
}

/// Polls the job until it has finished.
async fn finished(app: &TestApp, jwt: &str, location: &str) -> Value {
    test_support::eventually_matching(
        "the job to finish",
        Duration::from_secs(10),
        || async { status(app, jwt, location).await.1 },
        |body| body["status"] == "succeeded" || body["status"] == "failed",
    )
    .await
}

/// A member cancels at Patreon, asks for a recheck, and sees the change once the worker ran it.
async fn a_recheck_runs_on_the_worker_and_updates_the_member(app: TestApp) {
    let id = app.active_patron("6101");
    let signed_in = app.sign_in(&id).await;
    app.mock.set_membership(
        &id,
        CAMPAIGN_ID,
        Some(MockMembership::former(&id, CAMPAIGN_ID)),
    );

    let response = recheck(&app, &signed_in.jwt).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = location(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/jobs/{}", body["jobId"].as_str().unwrap())
    );
    assert_eq!(body["status"], "queued");

    // Asked again while it waits: the same job, not a second one.
    let again: Value = recheck(&app, &signed_in.jwt).await.json().await.unwrap();
    assert_eq!(again["jobId"], body["jobId"]);

    app.start_worker().await;
    let done = finished(&app, &signed_in.jwt, &location).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], "not_a_paying_member");
    assert!(done["startedAt"].is_string() && done["finishedAt"].is_string());

    // Having seen the job finish, the member's next read is fresh (no waiting for the cache).
    let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
    assert_eq!(me["isPaidMember"], false);

    // Right after a finished check, another has to wait.
    let too_soon = recheck(&app, &signed_in.jwt).await;
    assert_eq!(too_soon.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = too_soon.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(
        too_soon.json::<Value>().await.unwrap()["error"],
        "recheck_too_soon"
    );
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn a_recheck_on_the_embedded_queue(app) {
        a_recheck_runs_on_the_worker_and_updates_the_member(app).await;
    }

    async fn a_job_is_visible_to_its_member_and_admins_only(app) {
        let member = app.active_patron("6201");
        let other = app.active_patron("6202");
        let member_jwt = app.sign_in(&member).await.jwt;
        let other_jwt = app.sign_in(&other).await.jwt;
        let location = location(&recheck(&app, &member_jwt).await);
        assert_eq!(status(&app, &member_jwt, &location).await.0, StatusCode::OK);
        let (code, body) = status(&app, &other_jwt, &location).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        assert_eq!(status(&app, &member_jwt, "/api/jobs/does-not-exist").await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.client.get(app.url(&location)).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_every_members_job() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("ADMIN_PATREON_IDS", "6302"),
    )
    .await;
    let member = app.active_patron("6301");
    let admin = app.active_patron("6302");
    let member_jwt = app.sign_in(&member).await.jwt;
    let admin_jwt = app.sign_in(&admin).await.jwt;
    let location = location(&recheck(&app, &member_jwt).await);
    assert_eq!(status(&app, &admin_jwt, &location).await.0, StatusCode::OK);
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_on_the_redis_queue() {
    let Some(url) = test_support::redis_url() else {
        return;
    };
    let prefix = format!("gate-test-{}", uuid::Uuid::new_v4().simple());
    let options = Options::default()
        .with("REDIS_URL", url)
        .with("REDIS_KEY_PREFIX", prefix);
    let app = TestApp::spawn_with(Backend::Sqlite, options).await;
    a_recheck_runs_on_the_worker_and_updates_the_member(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recheck_from_the_browser_needs_the_csrf_header() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("6401");
    let jwt = app.sign_in(&id).await.jwt;
    let cookie = format!("auth_token={jwt}");
    let bare = app
        .client
        .post(app.url("/api/auth/recheck"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let same_site = app
        .same_site_post("/api/auth/recheck", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(same_site.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_patreon_failure_is_retried_and_the_status_shows_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("6501");
    let jwt = app.sign_in(&id).await.jwt;
    // Two failed answers (retried after 1 s, then 2 s), then Patreon answers.
    let failing = patreon_mock::EndpointFault {
        fail_next: 2,
        status: 503,
        ..Default::default()
    };
    app.mock.set_faults(patreon_mock::Faults {
        identity: failing,
        ..Default::default()
    });
    let location = location(&recheck(&app, &jwt).await);
    app.start_worker().await;
    let done = finished_within(&app, &jwt, &location, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["result"], "paying_member");
}

/// A 429 is Patreon slowing the whole deployment down, not a failure of this member's check:
/// however many there are, the check waits them out and spends no attempt on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_recheck_waits_it_out_without_spending_attempts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("6551");
    let jwt = app.sign_in(&id).await.jwt;
    // More 429s in a row than a check has attempts.
    let throttled = patreon_mock::EndpointFault {
        fail_next: 6,
        status: 429,
        retry_after_secs: Some(1),
        ..Default::default()
    };
    app.mock.set_faults(patreon_mock::Faults {
        identity: throttled,
        ..Default::default()
    });
    let location = location(&recheck(&app, &jwt).await);
    app.start_worker().await;
    let done = finished_within(&app, &jwt, &location, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["result"], "paying_member");
}

/// The job's status once it has finished, waiting at most `within`.
async fn finished_within(app: &TestApp, jwt: &str, location: &str, within: Duration) -> Value {
    test_support::eventually("the job to finish", within, || async {
        let (_, body) = status(app, jwt, location).await;
        (body["status"] == "succeeded" || body["status"] == "failed").then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_after_five_attempts_and_leave_the_membership_alone() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("6601");
    let jwt = app.sign_in(&id).await.jwt;
    // Patreon down: backoff of 1, 2, 4 and 8 s (±25 %) between the five attempts.
    let down = patreon_mock::EndpointFault {
        fail_next: 100,
        status: 503,
        ..Default::default()
    };
    app.mock.set_faults(patreon_mock::Faults {
        identity: down,
        ..Default::default()
    });
    let location = location(&recheck(&app, &jwt).await);
    app.start_worker().await;
    let done = finished_within(&app, &jwt, &location, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "failed", "never gave up: {done}");
    assert_eq!(done["attempts"], 5);
    assert_eq!(done["error"], "unavailable");
    app.mock.set_faults(patreon_mock::Faults::default());
    let me: Value = app.me_bearer(&jwt).await.json().await.unwrap();
    assert_eq!(
        me["isPaidMember"], true,
        "a transient failure never takes access away"
    );
}
