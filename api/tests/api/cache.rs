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

/// A second `api` process (the real binary) on `app`'s SQLite file and queue; killed on drop.
struct OtherProcess {
    child: std::process::Child,
    address: String,
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn other_api_process(app: &TestApp) -> OtherProcess {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("http://127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .envs([
            ("DATABASE_URL", app.database_url()),
            ("QUEUE_SQLITE_URL", app.queue_url()),
            ("JWT_SECRET", JWT_SECRET.into()),
            ("TOKEN_ENCRYPTION_KEY", ENCRYPTION_KEY.into()),
            ("PATREON_CLIENT_ID", "mock-client-id".into()),
            ("PATREON_CLIENT_SECRET", "mock-client-secret".into()),
            (
                "PATREON_REDIRECT_URI",
                format!("{address}/api/auth/patreon/callback"),
            ),
            ("PATREON_CAMPAIGN_ID", CAMPAIGN_ID.into()),
            ("PATREON_BASE_URL", app.mock.base_url()),
            ("FRONTEND_URL", format!("{FRONTEND}/")),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "1000".into()),
            ("BIND_ADDRESS", "127.0.0.1".into()),
            ("PORT", port.to_string()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run the api binary");
    let other = OtherProcess { child, address };
    let ready = format!("{}/readyz", other.address);
    test_support::eventually_true(
        "the second api process to be ready",
        Duration::from_secs(30),
        || {
            let request = app.client.get(&ready).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        },
    )
    .await;
    other
}

/// The browser flow for `member` against the api at `address`; returns its `auth_token`.
async fn sign_in_at(app: &TestApp, address: &str, member: &str) -> String {
    let login = app
        .client
        .get(format!("{address}/api/auth/patreon/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);
    let state_cookie = set_cookies(&login)
        .into_iter()
        .find(|c| c.contains("oauth_state="))
        .expect("state cookie");
    let state_cookie = state_cookie.split(';').next().unwrap().to_owned();
    let callback = app.consent(&location(&login), member).await;
    let landed = app.callback(&callback, &state_cookie).await;
    assert_eq!(landed.status(), StatusCode::FOUND, "{}", location(&landed));
    cookie_value(&set_cookies(&landed), "auth_token").expect("auth_token cookie")
}

/// The embedded default runs the api and the worker as two processes on one SQLite file, which
/// has no NOTIFY: a change the other process commits (here a sign-in that finds the membership
/// ended, then a logout) used to show only when this process's cache entry expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_a_change_by_another_process_shows_well_within_the_cache_ttl() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("AUTH_CACHE_TTL_MS", "60000"),
    )
    .await;
    let other = other_api_process(&app).await;
    let member = app.active_patron("9801");
    let signed_in = app.sign_in(&member).await;
    let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
    assert_eq!(me["isPaidMember"], true, "cached now for a minute");

    app.mock.set_membership(
        &member,
        CAMPAIGN_ID,
        Some(MockMembership::former(&member, CAMPAIGN_ID)),
    );
    let other_jwt = sign_in_at(&app, &other.address, &member).await;
    let started = Instant::now();

    test_support::eventually_true(
        "the ended membership to show",
        Duration::from_secs(3),
        || async {
            let me: Value = app.me_bearer(&signed_in.jwt).await.json().await.unwrap();
            me["isPaidMember"] == false
        },
    )
    .await;
    println!("membership change seen after {:?}", started.elapsed());

    let logout = app
        .client
        .post(format!("{}/api/auth/logout", other.address))
        .bearer_auth(&signed_in.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let started = Instant::now();
    test_support::eventually_true(
        "the revoked session to be refused",
        Duration::from_secs(3),
        || async { app.me_bearer(&signed_in.jwt).await.status() == StatusCode::UNAUTHORIZED },
    )
    .await;
    println!("logout seen after {:?}", started.elapsed());
    assert_eq!(
        app.me_bearer(&other_jwt).await.status(),
        StatusCode::OK,
        "only that session ended"
    );
}
