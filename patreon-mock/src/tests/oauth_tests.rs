use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::{EndpointFault, Faults, MockConfig};

#[tokio::test]
async fn code_flow_end_to_end() {
    let h = H::seeded().await;
    let state = "a b&c=d/é+?";
    let q = query(&[
        ("response_type", "code"),
        ("client_id", "mock-client-id"),
        ("redirect_uri", REDIRECT),
        ("scope", "identity identity[email]"),
        ("state", state),
        ("as", "100000001"),
    ]);
    let r = h.get(&format!("/oauth2/authorize?{q}"), None).await;
    assert_eq!(r.status, 302);
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert!(
        loc.as_str()
            .starts_with("http://localhost:3000/auth/callback?x=1&code=")
    );
    let params: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert!(params.contains(&("state".into(), state.into())));
    let code = params.iter().find(|(k, _)| k == "code").unwrap().1.clone();

    let r = h.exchange(&code).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let tok = r.json();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 2_678_400);
    assert_eq!(tok["scope"], "identity identity[email]");
    let access = tok["access_token"].as_str().unwrap();
    assert_eq!(access.len(), 64);

    let v = h.identity(access, FULL_QUERY).await.json();
    assert_eq!(v["data"]["type"], "user");
    assert_eq!(v["data"]["id"], "100000001");
    assert_eq!(v["data"]["attributes"]["full_name"], "Ada Active");
    assert_eq!(v["data"]["attributes"]["email"], "ada@example.com");
    let member_id = ada().memberships[0].member_id.clone();
    assert_eq!(
        v["data"]["relationships"]["memberships"]["data"][0]["id"],
        member_id.as_str()
    );
    let inc = v["included"].as_array().unwrap();
    let member = inc.iter().find(|x| x["type"] == "member").unwrap();
    assert_eq!(member["attributes"]["patron_status"], "active_patron");
    assert_eq!(member["attributes"]["currently_entitled_amount_cents"], 500);
    assert_eq!(member["relationships"]["campaign"]["data"]["id"], CAMPAIGN);
    assert!(member["relationships"]["campaign"]["links"]["related"].is_string());
    assert_eq!(
        member["relationships"]["currently_entitled_tiers"]["data"][0]["id"],
        "10000002"
    );
    let tier = inc.iter().find(|x| x["type"] == "tier").unwrap();
    assert_eq!(tier["attributes"]["title"], "Supporter");
    assert_eq!(tier["attributes"]["amount_cents"], 500);
    let campaign = inc.iter().find(|x| x["type"] == "campaign").unwrap();
    assert_eq!(campaign["attributes"], serde_json::json!({}));
    assert!(
        v["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with("/api/oauth2/v2/user/100000001")
    );

    let stats = h.mock.stats();
    assert_eq!(
        (
            stats.authorize,
            stats.token_code_grants,
            stats.identity_calls
        ),
        (1, 1, 1)
    );
    assert_eq!(
        stats.last_token_request_redirect_uri.as_deref(),
        Some(REDIRECT)
    );
    assert!(
        stats
            .last_authorize_query
            .unwrap()
            .contains("client_id=mock-client-id")
    );
}

#[tokio::test]
async fn code_is_single_use_and_bound_to_redirect_uri() {
    let h = H::seeded().await;
    let code = h.code("100000001", "identity").await;
    assert_eq!(h.exchange(&code).await.status, 200);
    let again = h.exchange(&code).await;
    assert_eq!(again.status, 401);
    assert_eq!(
        again.json(),
        serde_json::json!({ "error": "invalid_grant" })
    );

    let code = h.code("100000001", "identity").await;
    let r = h
        .post_form(
            "/api/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "mock-client-id"),
                ("client_secret", "mock-client-secret"),
                ("redirect_uri", "http://localhost:3000/other"),
            ],
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(h.mock.stats().token_code_grants, 3);
}

#[tokio::test]
async fn token_endpoint_errors() {
    let h = H::seeded().await;
    let code = h.code("100000001", "identity").await;
    let base = [
        ("grant_type", "authorization_code"),
        ("client_id", "mock-client-id"),
    ];
    let mut wrong = base.to_vec();
    wrong.extend([
        ("client_secret", "nope"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
    ]);
    let r = h.post_form("/api/oauth2/token", &wrong).await;
    assert_eq!(
        (r.status, r.json()),
        (401, serde_json::json!({ "error": "invalid_client" }))
    );
    let mut no_code = base.to_vec();
    no_code.extend([
        ("client_secret", "mock-client-secret"),
        ("redirect_uri", REDIRECT),
    ]);
    let r = h.post_form("/api/oauth2/token", &no_code).await;
    assert_eq!(r.status, 400);
    let want = serde_json::json!({ "error": "invalid_request", "error_description": "Missing code parameter." });
    assert_eq!(r.json(), want);
}

#[tokio::test]
async fn refresh_rotates_and_old_token_is_dead() {
    let h = H::seeded().await;
    let (access, refresh) = h.login("100000001", "identity").await;
    let r = h.refresh(&refresh).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let (access2, refresh2) = (
        v["access_token"].as_str().unwrap(),
        v["refresh_token"].as_str().unwrap(),
    );
    assert_ne!(access2, access);
    assert_ne!(refresh2, refresh);
    assert_eq!(v["scope"], "identity");
    let old = h.refresh(&refresh).await;
    assert_eq!(
        (old.status, old.json()),
        (401, serde_json::json!({ "error": "invalid_grant" }))
    );
    assert_eq!(h.identity(access2, &[]).await.status, 200);
    assert_eq!(h.refresh(refresh2).await.status, 200);
    assert_eq!(h.mock.stats().token_refresh_grants, 3);
}

#[tokio::test]
async fn expired_and_revoked_tokens() {
    let h = H::seeded().await;
    let (access, refresh) = h.login("100000001", "identity").await;
    h.mock.expire_access_tokens("100000001");
    assert_401_shape(&h.identity(&access, &[]).await);
    let r = h.refresh(&refresh).await;
    assert_eq!(r.status, 200);
    let access2 = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(h.identity(&access2, &[]).await.status, 200);

    h.mock.revoke_app("100000001");
    assert_401_shape(&h.identity(&access2, &[]).await);
    assert_eq!(h.refresh(&refresh2).await.json()["error"], "invalid_grant");
    assert_401_shape(&h.identity("not-a-token", &[]).await);
    assert_401_shape(&h.get("/api/oauth2/v2/identity", None).await);
}

#[tokio::test]
async fn authorize_errors_deny_and_chooser() {
    let h = H::seeded().await;
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", "wrong"),
        ("redirect_uri", REDIRECT),
    ];
    assert_eq!(
        h.get(&format!("/oauth2/authorize?{}", query(&pairs)), None)
            .await
            .status,
        400
    );
    pairs[1].1 = "mock-client-id";
    pairs.push(("state", "s 1"));
    let chooser = h
        .get(&format!("/oauth2/authorize?{}", query(&pairs)), None)
        .await;
    assert_eq!(chooser.status, 200);
    assert!(chooser.body.contains("Continue as Ada Active"));
    assert!(chooser.body.contains("&amp;as=100000006"));
    assert!(chooser.body.contains(">Deny</a>"));
    assert!(!chooser.body.contains("src=") && !chooser.body.contains("<link"));
    pairs.push(("deny", "1"));
    let r = h
        .get(&format!("/oauth2/authorize?{}", query(&pairs)), None)
        .await;
    assert_eq!(r.status, 302);
    let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
    let q: Vec<(String, String)> = loc.query_pairs().into_owned().collect();
    assert!(q.contains(&("error".into(), "access_denied".into())));
    assert!(q.contains(&("state".into(), "s 1".into())));
}

#[tokio::test]
async fn token_fault_429_then_recovers() {
    let h = H::seeded().await;
    let code = h.code("100000001", "identity").await;
    let token = EndpointFault {
        fail_next: 1,
        status: 429,
        retry_after_secs: Some(7),
        ..Default::default()
    };
    h.mock.set_faults(Faults {
        token,
        ..Default::default()
    });
    let r = h.exchange(&code).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    let e = &r.json()["errors"][0];
    assert_eq!(
        (e["retry_after_seconds"].as_u64(), e["code_name"].as_str()),
        (Some(7), Some("RequestThrottled"))
    );
    assert_eq!(h.exchange(&code).await.status, 200);
}

#[tokio::test]
async fn serves_raw_http_on_loopback() {
    let mock = MockPatreon::start(MockConfig::default()).await.unwrap();
    let base = mock.base_url();
    let addr = base.strip_prefix("http://").unwrap().to_string();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"));
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /api/oauth2/v2/identity HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    mock.shutdown().await;
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}
