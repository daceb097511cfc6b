//! `/metrics`: Prometheus text with sign-ins, requests and stored work; guarded by a token
//! when one is configured.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sign_ins_and_requests_and_read_work_owed_from_the_database() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let member = app.active_patron("9301");
    let jwt = app.sign_in(&member).await.jwt;
    assert_eq!(app.me_bearer(&jwt).await.status(), StatusCode::OK);

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
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
    assert!(!body.contains("9301"), "no ids in labels");
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
