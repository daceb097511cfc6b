//! `/metrics`: Prometheus text with sign-ins, requests and stored work; only for a scraper with
//! the token, and with label sets bounded by the routes the service has.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};

use crate::helpers::*;

const METRICS_TOKEN: &str = "scrape-secret-123";

async fn with_metrics_token() -> TestApp {
    TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("METRICS_TOKEN", METRICS_TOKEN),
    )
    .await
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sign_ins_and_requests_and_read_work_owed_from_the_database() {
    let app = with_metrics_token().await;
    let member = app.active_patron("9301");
    let jwt = app.sign_in(&member).await.jwt;
    assert_eq!(app.me_bearer(&jwt).await.status(), StatusCode::OK);

    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.contains(r#"gate_sign_ins_total{outcome="ok"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"gate_http_request_duration_seconds_count{method="GET",route="/api/auth/me",status="200"}"#),
        "{body}"
    );
    assert!(body.contains(r#"gate_patreon_requests_total{endpoint="identity",outcome="ok"}"#));
    assert!(body.contains("gate_jobs_owed 0\n"), "{body}");
    assert!(
        body.contains("# TYPE gate_sweep_lag_seconds gauge"),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"));
    assert!(!body.contains(&jwt), "no token in metrics");
    // Only label values: a sample's value (a duration sum) may contain the digits by chance.
    let labels = body
        .lines()
        .filter_map(|line| {
            line.split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
        })
        .map(|(labels, _)| labels);
    assert!(
        labels.clone().all(|l| !l.contains("9301")),
        "no ids in labels"
    );
    assert!(labels.count() > 0, "the scrape has labelled samples");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_token_keeps_scrapers_without_it_out() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("METRICS_TOKEN", "scrape-secret-123"),
    )
    .await;
    let plain = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::UNAUTHORIZED);
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret-12")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_refused_without_credentials_by_default() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let member = app.active_patron("9302");
    app.sign_in(&member).await;

    for bearer in [None, Some(""), Some("anything")] {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{bearer:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains("metrics_disabled"), "{body}");
        assert!(!body.contains("gate_"), "{body}");
    }
}

/// Every `gate_http_request_duration_seconds` series: (method, route, status) label sets.
fn http_series(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("gate_http_request_duration_seconds_count{"))
        .filter_map(|l| l.split('}').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_paths_and_methods_add_no_series() {
    let app = with_metrics_token().await;
    let before = http_series(&scrape(&app).await);

    // 2,000 requests a scanner might send: made-up paths everywhere, made-up methods on real
    // routes. The marker shows whether any of them became a label.
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, base) = (app.client.clone(), app.address.clone());
        tasks.spawn(async move {
            for n in 0..250 {
                let marker = format!("zq{worker}x{n}");
                let (method, path) = match n % 5 {
                    0 => (Method::GET, format!("/{marker}")),
                    1 => (Method::GET, format!("/api/{marker}/x")),
                    2 => (Method::POST, format!("/api/admin/members/1/{marker}")),
                    3 => (Method::GET, format!("/admin/{marker}.js")),
                    _ => (
                        Method::from_bytes(marker.to_uppercase().as_bytes()).unwrap(),
                        "/api/auth/me".to_owned(),
                    ),
                };
                let response = client
                    .request(method, format!("{base}{path}"))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_client_error(), "{path}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let body = scrape(&app).await;
    let after = http_series(&body);
    assert!(
        !body.to_lowercase().contains("zq"),
        "a request became a label"
    );
    // Other tests in this process add their own series meanwhile; a scanner's 2,000 requests
    // may add only a handful (other/OTHER by status).
    let added = after.difference(&before).count();
    assert!(added < 100, "{added} new series: {after:#?}");
    let methods = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER",
    ];
    for series in &after {
        let method = series.split('"').nth(1).unwrap_or_default();
        assert!(methods.contains(&method), "{series}");
    }
    for expected in [
        r#"method="GET",route="other",status="404""#,
        r#"method="OTHER",route="/api/auth/me",status="405""#,
    ] {
        assert!(after.contains(expected), "{expected} missing: {after:#?}");
    }
}
