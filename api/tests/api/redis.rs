//! With `REDIS_URL`: rate limits shared by every api process, readiness that includes Redis, a
//! local fallback when Redis stops answering, and nothing secret stored in Redis (T37).
//!
//! Runs when `TEST_REDIS_URL` is set (CI sets it); `REQUIRE_REDIS=1` makes its absence fail.

use std::time::Duration;

use ::redis::AsyncCommands;
use reqwest::StatusCode;
use test_support::redis_url;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::helpers::*;

/// Options for an app on Redis, with a key prefix of its own so parallel tests don't meet.
fn on_redis(url: &str, prefix: &str, per_minute: u32) -> Options {
    Options::default()
        .with("REDIS_URL", url)
        .with("REDIS_KEY_PREFIX", prefix)
        .with("AUTH_RATE_LIMIT_PER_MINUTE", per_minute.to_string())
}

fn unique_prefix() -> String {
    format!("gate-test-{}", uuid::Uuid::new_v4().simple())
}

async fn login_status(app: &TestApp) -> StatusCode {
    app.client
        .get(app.url("/api/auth/patreon/login"))
        .send()
        .await
        .unwrap()
        .status()
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_rate_limit_is_shared_by_every_api_process() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let a = TestApp::spawn_with(Backend::Sqlite, on_redis(&url, &prefix, 3)).await;
    let b = TestApp::spawn_with(Backend::Sqlite, on_redis(&url, &prefix, 3)).await;
    assert_eq!(login_status(&a).await, StatusCode::FOUND);
    assert_eq!(login_status(&a).await, StatusCode::FOUND);
    assert_eq!(login_status(&b).await, StatusCode::FOUND);
    let fourth = b
        .client
        .get(b.url("/api/auth/patreon/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fourth.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the budget is per deployment, not per process"
    );
    let retry_after: u64 = fourth.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(login_status(&a).await, StatusCode::TOO_MANY_REQUESTS);
}

/// Everything stored under `key`, whatever its type, as text.
async fn dump(redis: &mut ::redis::aio::MultiplexedConnection, key: &str) -> String {
    let kind: String = ::redis::cmd("TYPE")
        .arg(key)
        .query_async(redis)
        .await
        .unwrap();
    let values: Vec<Vec<u8>> = match kind.as_str() {
        "string" => vec![redis.get(key).await.unwrap()],
        "hash" => redis.hgetall::<_, Vec<Vec<u8>>>(key).await.unwrap(),
        "list" => redis.lrange(key, 0, -1).await.unwrap(),
        "set" => redis.smembers(key).await.unwrap(),
        "zset" => redis.zrange(key, 0, -1).await.unwrap(),
        other => panic!("unexpected Redis type {other} at {key}"),
    };
    values
        .iter()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// T37: after sign-in, refresh and a queued recheck, nothing in Redis (keys or values, of any
/// type) holds a JWT, a refresh token, a Patreon token, an OAuth code or state, or a secret.
#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_never_holds_tokens_or_secrets() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let app = TestApp::spawn_with(Backend::Sqlite, on_redis(&url, &prefix, 100)).await;
    let id = app.active_patron("7701");
    let (authorize, state_cookie) = app.start_login(None).await;
    let state = query_param(&authorize, "state").unwrap();
    let callback = app.consent(&authorize, &id).await;
    let code = query_param(&callback, "code").unwrap();
    let cookies = set_cookies(&app.callback(&callback, &state_cookie).await);
    let jwt = cookie_value(&cookies, "auth_token").unwrap();
    let refresh = cookie_value(&cookies, "auth_refresh").unwrap();
    let renewed = app
        .same_site_post("/api/auth/refresh", &format!("auth_refresh={refresh}"))
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), StatusCode::OK);
    let queued = app
        .client
        .post(app.url("/api/auth/recheck"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let user = domain::members::users::find_by_patreon_id(&app.db, &id.as_str().into())
        .await
        .unwrap()
        .unwrap();
    let cipher = &app.settings.token_cipher;
    let patreon_access = cipher
        .decrypt(
            user.access_token.as_deref().unwrap(),
            &domain::infra::crypto::token_aad(&id, "access_token"),
        )
        .unwrap();

    let mut redis = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis.keys(format!("{prefix}:*")).await.unwrap();
    assert!(
        keys.iter().any(|k| k.contains(":ratelimit:")),
        "the limiter wrote its counters: {keys:?}"
    );
    assert!(
        keys.iter().any(|k| k.contains(":jobs")),
        "the recheck is queued in Redis: {keys:?}"
    );
    let secrets = [
        ("JWT", jwt.as_str()),
        ("refresh token", refresh.as_str()),
        ("OAuth state", state.as_str()),
        ("OAuth code", code.as_str()),
        (
            "Patreon access token",
            secrecy::ExposeSecret::expose_secret(&patreon_access),
        ),
        ("client secret", "mock-client-secret"),
        ("JWT_SECRET", JWT_SECRET),
    ];
    for key in keys {
        let content = format!("{key}\n{}", dump(&mut redis, &key).await);
        for (what, secret) in secrets {
            assert!(
                !content.contains(secret),
                "{what} found in Redis under {key}"
            );
        }
    }
}

/// Forwards TCP to Redis until aborted, so a test can make Redis vanish for one app.
async fn proxy_to(redis_url: &str) -> (String, JoinHandle<()>) {
    let target = reqwest::Url::parse(redis_url).unwrap();
    let target = format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(6379)
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut links = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            links.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("redis://127.0.0.1:{port}"), task)
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_stops_answering_readiness_fails_and_limits_fall_back_to_the_process() {
    let Some(url) = redis_url() else { return };
    let (proxied, proxy) = proxy_to(&url).await;
    let app = TestApp::spawn_with(Backend::Sqlite, on_redis(&proxied, &unique_prefix(), 2)).await;
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    proxy.abort(); // drops the listener and every forwarded connection
    let ready = test_support::eventually("/readyz to notice", Duration::from_secs(10), || async {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        (ready.status() == StatusCode::SERVICE_UNAVAILABLE).then_some(ready)
    })
    .await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        ready.json::<serde_json::Value>().await.unwrap()["status"],
        "redis unreachable"
    );
    assert_eq!(login_status(&app).await, StatusCode::FOUND);
    assert_eq!(login_status(&app).await, StatusCode::FOUND);
    assert_eq!(
        login_status(&app).await,
        StatusCode::TOO_MANY_REQUESTS,
        "still limited without Redis"
    );
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_url_stops_the_api_at_start() {
    let vars = [("REDIS_URL", "redis://127.0.0.1:1")];
    let result = TestApp::try_spawn_with(
        Backend::Sqlite,
        Options {
            vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        },
    )
    .await;
    let error = result.err().expect("the api started without its Redis");
    assert!(error.contains("cannot reach Redis at REDIS_URL"), "{error}");
}
