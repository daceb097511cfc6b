//! Every `/api/admin/*` operation the served spec lists refuses visitors (401) and members
//! without the admin role (403) before it reads its body, so a new admin route cannot forget the
//! check.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

/// The admin operations when this test was written; the walk must find at least these.
const KNOWN_ADMIN_OPERATIONS: usize = 10;

struct Operation {
    method: Method,
    /// The spec's path with every `{parameter}` filled in.
    path: String,
    has_body: bool,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

fn admin_operations(spec: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/admin/") {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            found.push(Operation {
                method: method.to_uppercase().parse().expect("an HTTP method"),
                path: with_parameters_filled(path),
                has_body: operation.get("requestBody").is_some(),
            });
        }
    }
    found
}

/// `/api/admin/members/{id}` → `/api/admin/members/1`: every id in these paths is a number.
fn with_parameters_filled(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The request a browser's own frontend would send (CSRF header and our origin), with a body
/// that does not parse as any operation's input: a 400 would mean the body was read first.
fn request(app: &TestApp, op: &Operation) -> reqwest::RequestBuilder {
    let builder = app
        .client
        .request(op.method.clone(), app.url(&op.path))
        .header(header::ORIGIN, FRONTEND)
        .header("X-Requested-With", "fetch");
    if op.has_body {
        builder.json(&json!({}))
    } else {
        builder
    }
}

/// Asserts the status and error code; returns the body.
async fn assert_refused(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
    what: &str,
) -> Value {
    assert_eq!(response.status(), status, "{what}");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(body["error"], code, "{what}: {body}");
    body
}

async fn assert_needs_admin(response: reqwest::Response, what: &str) {
    let body = assert_refused(response, StatusCode::FORBIDDEN, "forbidden", what).await;
    assert_eq!(body["message"], "This needs the admin role.", "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_operation_refuses_visitors_and_members_on_sqlite() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("ADMIN_PATREON_IDS", "9702"),
    )
    .await;
    let member = app.active_patron("9701");
    app.active_patron("9702");
    let member_jwt = app.sign_in(&member).await.jwt;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let operations = admin_operations(&spec);
    assert!(
        operations.len() >= KNOWN_ADMIN_OPERATIONS,
        "found only {} admin operations in the spec",
        operations.len()
    );
    for op in &operations {
        let visitor = request(&app, op).send().await.unwrap();
        assert_refused(
            visitor,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            &format!("visitor: {op}"),
        )
        .await;

        let bearer = request(&app, op).bearer_auth(&member_jwt).send().await;
        assert_needs_admin(bearer.unwrap(), &format!("member with Bearer: {op}")).await;

        let cookie = request(&app, op)
            .header(header::COOKIE, format!("auth_token={member_jwt}"))
            .send()
            .await;
        assert_needs_admin(cookie.unwrap(), &format!("member with cookie: {op}")).await;
    }
}
