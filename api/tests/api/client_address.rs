//! Rate limits key on the client's real address behind the proxies we trust: the rightmost
//! `X-Forwarded-For` entry that is not one of them. What a client writes to the left of it
//! neither resets its budget nor spends someone else's.

use reqwest::StatusCode;

use crate::helpers::*;

/// Three sign-in attempts a minute per client, behind `proxies`.
async fn behind(proxies: &[(&'static str, &str)]) -> TestApp {
    let options = proxies.iter().fold(
        Options::default().with("AUTH_RATE_LIMIT_PER_MINUTE", "3"),
        |o, (name, value)| o.with(name, *value),
    );
    TestApp::spawn_with(Backend::Sqlite, options).await
}

/// A login as it reaches the api through the proxy: `forwarded_for` is the header the proxy sends
/// on (whatever the client sent, then the address the proxy saw).
async fn login_via(app: &TestApp, forwarded_for: &str) -> StatusCode {
    app.client
        .get(app.url("/api/auth/patreon/login"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
        .status()
}

const RENDER: &[(&str, &str)] = &[("TRUSTED_PROXY_HOPS", "1")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_rotating_a_spoofed_forwarded_address_is_still_limited() {
    // The older setting in render.yaml, and the one that replaces it.
    for setting in [("TRUST_PROXY_HEADERS", "true"), ("TRUSTED_PROXY_HOPS", "1")] {
        let app = behind(&[setting]).await;
        for n in 1..=3 {
            let header = format!("198.51.100.{n}, 203.0.113.5");
            assert_eq!(login_via(&app, &header).await, StatusCode::FOUND, "{n}");
        }
        for n in 4..=8 {
            let header = format!("198.51.100.{n}, 203.0.113.5");
            assert_eq!(
                login_via(&app, &header).await,
                StatusCode::TOO_MANY_REQUESTS,
                "{setting:?}: attempt {n} with a fresh spoofed address"
            );
        }
        let states = app.count("oauth_states").await;
        assert_eq!(states, 3, "limited attempts stored nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_victim_address_does_not_lock_the_victim_out() {
    for setting in [("TRUST_PROXY_HEADERS", "true"), ("TRUSTED_PROXY_HOPS", "1")] {
        let app = behind(&[setting]).await;
        let victim = "192.0.2.44";
        for _ in 0..10 {
            login_via(&app, &format!("{victim}, 203.0.113.5")).await;
        }
        assert_eq!(
            login_via(&app, &format!("{victim}, 203.0.113.5")).await,
            StatusCode::TOO_MANY_REQUESTS,
            "the attacker is limited"
        );
        assert_eq!(
            login_via(&app, victim).await,
            StatusCode::FOUND,
            "{setting:?}: the victim still signs in"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_one_proxy_each_get_their_own_budget() {
    let app = behind(RENDER).await;
    for _ in 0..3 {
        assert_eq!(login_via(&app, "203.0.113.5").await, StatusCode::FOUND);
    }
    assert_eq!(
        login_via(&app, "203.0.113.5").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(login_via(&app, "203.0.113.6").await, StatusCode::FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_addresses_in_one_64_share_a_budget() {
    let app = behind(RENDER).await;
    for host in ["a", "b", "c"] {
        let header = format!("2001:db8:1:2::{host}");
        assert_eq!(
            login_via(&app, &header).await,
            StatusCode::FOUND,
            "{header}"
        );
    }
    assert_eq!(
        login_via(&app, "2001:db8:1:2:ffff:ffff:ffff:1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "another address of the same /64"
    );
    assert_eq!(
        login_via(&app, "2001:db8:1:3::a").await,
        StatusCode::FOUND,
        "the next /64 is someone else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_ranges_are_skipped_and_only_they_are_believed() {
    // nginx on the same host, behind Cloudflare (one of its published ranges).
    let app = behind(&[("TRUSTED_PROXIES", "127.0.0.1/32, 173.245.48.0/20")]).await;
    for n in 1..=3 {
        let header = format!("198.51.100.{n}, 203.0.113.5, 173.245.48.9");
        assert_eq!(login_via(&app, &header).await, StatusCode::FOUND, "{n}");
    }
    let header = "198.51.100.99, 203.0.113.5, 173.245.48.10";
    assert_eq!(login_via(&app, header).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login_via(&app, "203.0.113.6, 173.245.48.9").await,
        StatusCode::FOUND
    );

    // A peer outside the trusted ranges is the client, whatever it forwards.
    let direct = behind(&[("TRUSTED_PROXIES", "173.245.48.0/20")]).await;
    for n in 1..=3 {
        let header = format!("203.0.113.{n}");
        assert_eq!(login_via(&direct, &header).await, StatusCode::FOUND);
    }
    assert_eq!(
        login_via(&direct, "203.0.113.77").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_has_a_limit_of_its_own() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default()
            .with("AUTH_RATE_LIMIT_PER_MINUTE", "3")
            .with("WEBHOOK_RATE_LIMIT_PER_MINUTE", "5")
            .with("PATREON_WEBHOOK_SECRET", "webhook-secret-for-limits"),
    )
    .await;
    let forged = || {
        app.client
            .post(app.url("/api/patreon/webhook"))
            .header("x-patreon-signature", "00")
            .body("{}")
            .send()
    };
    for n in 1..=5 {
        assert_eq!(
            forged().await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "{n}"
        );
    }
    let over = forged().await.unwrap();
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));

    // The sign-in budget is a different one, in both directions.
    for n in 1..=3 {
        let login = app
            .client
            .get(app.url("/api/auth/patreon/login"))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::FOUND, "login {n}");
    }
    assert_eq!(
        forged().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
