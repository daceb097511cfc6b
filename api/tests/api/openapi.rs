//! The committed `openapi.json` is what the code generates (`cargo run -p api --bin gen-openapi`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[test]
fn the_committed_openapi_json_is_up_to_date() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json"))
            .unwrap_or_default();
    assert!(
        committed == api::openapi::spec_json(),
        "openapi.json is stale: run `cargo run -p api --bin gen-openapi` and commit the result"
    );
}

#[test]
fn every_operation_documents_its_responses_with_schemas() {
    let spec: Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
            for (status, response) in responses {
                let redirect_or_empty = ["302", "204", "202"].contains(&status.as_str())
                    && response["content"].is_null();
                assert!(
                    redirect_or_empty || response["content"].is_object(),
                    "{method} {path} {status} has no schema"
                );
            }
        }
    }
    let me = &spec["paths"]["/api/auth/me"]["get"]["responses"];
    let statuses: Vec<&String> = me.as_object().unwrap().keys().collect();
    assert_eq!(statuses, ["200", "401", "500"]);
}

#[tokio::test]
async fn the_service_serves_its_spec_and_docs_when_enabled() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    assert_eq!(
        spec.json::<Value>().await.unwrap()["info"]["title"],
        "patreon-gate"
    );
    assert_eq!(
        app.client
            .get(app.url("/docs"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Generated clients and API gateways fetch the spec from the service: it is public (committed)
/// and served whatever `API_DOCS` says; only the interactive docs wait for `API_DOCS=true`.
#[tokio::test]
async fn the_spec_is_served_by_default_and_the_docs_are_not() {
    // An empty value reads as unset: the default configuration.
    let default =
        TestApp::spawn_with(Backend::Sqlite, Options::default().with("API_DOCS", "")).await;
    let spec = default
        .client
        .get(default.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), StatusCode::OK);
    assert!(
        spec.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let served: Value = spec.json().await.unwrap();
    let committed: Value = serde_json::from_str(&api::openapi::spec_json()).unwrap();
    assert_eq!(served, committed, "the spec served is the one committed");
    assert_eq!(
        default
            .client
            .get(default.url("/docs"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}
