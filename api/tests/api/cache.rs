//! Several api processes on one PostgreSQL: a session revoked or a member changed through one
//! process is refused or seen by the others at once, not when their cache expires.

use std::time::{Duration, Instant};

use patreon_mock::MockMembership;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Two api processes sharing one database, both caching for a minute.
async fn two_processes() -> Option<(TestApp, TestApp)> {
    let long_cache = Options::default().with("AUTH_CACHE_TTL_MS", "60000");
    let a = TestApp::spawn_if_postgres_with(long_cache.clone()).await?;
    let b = TestApp::spawn_with(
        Backend::Postgres,
        long_cache.with("DATABASE_URL", a.database_url()),
    )
    .await;
    Some((a, b))
}

/// Polls until `check` holds, returning how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_through_one_process_is_refused_by_another_at_once() {
    let Some((a, b)) = two_processes().await else {
        return;
    };
    let id = a.active_patron("5501");
    let signed_in = a.sign_in(&id).await;
    assert_eq!(
        b.me_bearer(&signed_in.jwt).await.status(),
        StatusCode::OK,
        "b now caches the session"
    );

    let logout = a
        .client
        .post(a.url("/api/auth/logout"))
        .bearer_auth(&signed_in.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let took = within(Duration::from_secs(2), async || {
        b.me_bearer(&signed_in.jwt).await.status() == StatusCode::UNAUTHORIZED
    })
    .await
    .expect("the other process kept serving a revoked session");
    assert!(took < Duration::from_millis(500), "took {took:?}");
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_change_recorded_by_one_process_shows_in_another() {
    let Some((a, b)) = two_processes().await else {
        return;
    };
    let id = a.active_patron("5601");
    let first = a.sign_in(&id).await;
    let me: Value = b.me_bearer(&first.jwt).await.json().await.unwrap();
    assert_eq!(me["isPaidMember"], true);

    a.mock.set_membership(
        &id,
        CAMPAIGN_ID,
        Some(MockMembership::former(&id, CAMPAIGN_ID)),
    );
    a.sign_in(&id).await;

    within(Duration::from_secs(2), async || {
        let me: Value = b.me_bearer(&first.jwt).await.json().await.unwrap();
        me["isPaidMember"] == false
    })
    .await
    .expect("the other process kept serving the old membership");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_change_by_the_in_process_worker_is_seen_at_once() {
    // The demo's shape: api and worker in one process on SQLite, where there is no NOTIFY.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("AUTH_CACHE_TTL_MS", "60000"),
    )
    .await;
    let member = app.active_patron("9701");
    let signed_in = app.sign_in(&member).await;
    let me = app
        .me_bearer(&signed_in.jwt)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(me["isPaidMember"], true, "cached now for a minute");
    app.start_worker().await;
    app.mock.set_membership(
        "9701",
        CAMPAIGN_ID,
        Some(MockMembership::former("9701", CAMPAIGN_ID)),
    );
    let queued = app
        .client
        .post(app.url("/api/auth/recheck"))
        .bearer_auth(&signed_in.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let seen = within(Duration::from_secs(15), async || {
        let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
        me["isPaidMember"] == false
    })
    .await;
    assert!(seen.is_some(), "the cache kept the old status");
}
