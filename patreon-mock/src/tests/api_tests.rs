use serde_json::Value;

use super::*;
use crate::{Faults, MockMembership, MockTier, RateLimit, generated_patrons};

const MEMBERS: &str = "/api/oauth2/v2/campaigns/1234560/members";
const CREATOR: &str = "mock-creator-token";

fn members(v: &Value) -> Vec<&Value> {
    v["included"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["type"] == "member")
        .collect()
}

#[tokio::test]
async fn email_needs_identity_email_scope() {
    let h = H::seeded().await;
    let (with, _) = h.login("100000001", "identity identity[email]").await;
    let (without, _) = h.login("100000001", "identity").await;
    let fields = [("fields[user]", "email,full_name")];
    assert_eq!(
        h.identity(&with, &fields).await.json()["data"]["attributes"]["email"],
        "ada@example.com"
    );
    let attrs = h.identity(&without, &fields).await.json()["data"]["attributes"].clone();
    assert!(attrs.get("email").is_none());
    assert_eq!(attrs["full_name"], "Ada Active");
    // Without fields[user], only type and id.
    let v = h.identity(&with, &[]).await.json();
    assert_eq!(v["data"]["attributes"], serde_json::json!({}));
    assert!(v.get("included").is_none());
}

#[tokio::test]
async fn membership_visibility_follows_scope() {
    let h = H::seeded().await;
    let both = MockUser::active_patron("100000001", CAMPAIGN).with_membership(
        MockMembership::active("100000001", "7654320", MockTier::other_campaign_fan()),
    );
    h.mock.upsert_user(both);
    let (own, _) = h.login("100000001", "identity").await;
    let (all, _) = h.login("100000001", "identity identity.memberships").await;
    let v = h.identity(&own, FULL_QUERY).await.json();
    let ms = members(&v);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0]["relationships"]["campaign"]["data"]["id"], CAMPAIGN);
    let v = h.identity(&all, FULL_QUERY).await.json();
    assert_eq!(members(&v).len(), 2);
    assert_eq!(
        v["data"]["relationships"]["memberships"]["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Olga supports another campaign only: nothing visible with `identity`.
    let (olga, _) = h.login("100000005", "identity").await;
    assert!(members(&h.identity(&olga, FULL_QUERY).await.json()).is_empty());
    // Plain `include=memberships`: no campaign link, tiers not included.
    let v = h
        .identity(
            &own,
            &[
                ("include", "memberships"),
                ("fields[member]", "patron_status"),
            ],
        )
        .await
        .json();
    let m = members(&v)[0].clone();
    assert!(m.get("relationships").is_none());
    assert_eq!(v["included"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_pagination_over_2500_users() {
    let h = H::seeded().await;
    h.mock
        .upsert_users(generated_patrons(CAMPAIGN, crate::GENERATED_FIRST_ID, 2496));
    // Seeded: Ada, Dan, Fran, Fred are members of CAMPAIGN; Olga and Cora are not.
    let base = query(&[
        ("include", "user,currently_entitled_tiers"),
        ("fields[member]", "patron_status,email"),
        ("fields[tier]", "title,amount_cents"),
        ("fields[user]", "full_name"),
        ("page[count]", "1000"),
    ]);
    let (mut cursor, mut seen, mut pages) = (None::<String>, std::collections::HashSet::new(), 0);
    loop {
        let uri = match &cursor {
            None => format!("{MEMBERS}?{base}"),
            Some(c) => format!("{MEMBERS}?{base}&{}", query(&[("page[cursor]", c)])),
        };
        let r = h.get(&uri, Some(CREATOR)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        pages += 1;
        assert_eq!(v["meta"]["pagination"]["total"], 2500);
        for m in v["data"].as_array().unwrap() {
            assert!(seen.insert(m["id"].as_str().unwrap().to_string()));
            assert!(m["relationships"]["user"]["data"]["id"].is_string());
        }
        let users = v["included"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["type"] == "user")
            .count();
        assert_eq!(users, v["data"].as_array().unwrap().len());
        match v["meta"]["pagination"]["cursors"]["next"].as_str() {
            Some(next) => {
                assert!(
                    v["links"]["next"]
                        .as_str()
                        .unwrap()
                        .contains("page%5Bcursor%5D=")
                );
                cursor = Some(next.to_string());
            }
            None => {
                assert!(v.get("links").is_none());
                assert_eq!(v["data"].as_array().unwrap().len(), 500);
                break;
            }
        }
    }
    assert_eq!((pages, seen.len()), (3, 2500));
    assert_eq!(h.mock.stats().member_calls, 3);

    let r = h
        .get(
            &format!("{MEMBERS}?{}", query(&[("page[cursor]", "garbage")])),
            Some(CREATOR),
        )
        .await;
    assert_eq!(r.json()["errors"][0]["source"]["parameter"], "page[cursor]");
    assert_eq!(
        h.get("/api/oauth2/v2/campaigns/999/members", Some(CREATOR))
            .await
            .status,
        404
    );
    assert_401_shape(&h.get(MEMBERS, Some("bad")).await);
    let (user_token, _) = h.login("100000001", "identity").await;
    assert_401_shape(&h.get(MEMBERS, Some(&user_token)).await);
}

#[tokio::test]
async fn single_member() {
    let h = H::seeded().await;
    let id = ada().memberships[0].member_id.clone();
    let q = query(&[
        ("include", "user,campaign"),
        ("fields[member]", "patron_status,email"),
    ]);
    let v = h
        .get(&format!("/api/oauth2/v2/members/{id}?{q}"), Some(CREATOR))
        .await
        .json();
    assert_eq!(v["data"]["id"], id.as_str());
    assert_eq!(v["data"]["attributes"]["email"], "ada@example.com");
    assert_eq!(
        v["data"]["relationships"]["user"]["data"]["id"],
        "100000001"
    );
    assert_eq!(
        v["data"]["relationships"]["campaign"]["data"]["id"],
        CAMPAIGN
    );
    let missing = uuid::Uuid::new_v4();
    assert_eq!(
        h.get(&format!("/api/oauth2/v2/members/{missing}"), Some(CREATOR))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn rate_limit_per_client() {
    let h = H::seeded().await;
    let (token, _) = h.login("100000001", "identity").await;
    let rate_limit = Some(RateLimit {
        per_client_per_2s: 3,
        per_token_per_min: 100,
    });
    h.mock.set_faults(Faults {
        rate_limit,
        ..Default::default()
    });
    for _ in 0..3 {
        assert_eq!(h.identity(&token, &[]).await.status, 200);
    }
    let r = h.identity(&token, &[]).await;
    assert_eq!(r.status, 429);
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&secs));
    assert_eq!(r.json()["errors"][0]["retry_after_seconds"], secs);
    assert_eq!(h.mock.stats().rate_limited, 1);
}

#[tokio::test]
async fn rate_limit_per_token_survives_refresh() {
    let h = H::seeded().await;
    let (token, refresh) = h.login("100000001", "identity").await;
    let rate_limit = Some(RateLimit {
        per_client_per_2s: 0,
        per_token_per_min: 2,
    });
    h.mock.set_faults(Faults {
        rate_limit,
        ..Default::default()
    });
    assert_eq!(h.identity(&token, &[]).await.status, 200);
    let fresh = h.refresh(&refresh).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.identity(&fresh, &[]).await.status, 429);
}

#[tokio::test]
async fn identity_faults_and_user_agent() {
    let h = H::seeded().await;
    let (token, _) = h.login("100000001", "identity").await;
    let req = Request::builder()
        .uri_str("/api/oauth2/v2/identity")
        .header("authorization", format!("Bearer {token}"))
        .finish();
    let r = h.send(req).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["errors"][0]["status"], "403");
    let identity = crate::EndpointFault {
        fail_next: 2,
        status: 503,
        ..Default::default()
    };
    h.mock.set_faults(Faults {
        identity,
        ..Default::default()
    });
    assert_eq!(h.identity(&token, &[]).await.status, 503);
    assert_eq!(h.identity(&token, &[]).await.status, 503);
    assert_eq!(h.identity(&token, &[]).await.status, 200);
    let identity = crate::EndpointFault {
        fail_next: 1,
        status: 200,
        bad_json: true,
        ..Default::default()
    };
    h.mock.set_faults(Faults {
        identity,
        ..Default::default()
    });
    let r = h.identity(&token, &[]).await;
    assert!(r.status == 200 && serde_json::from_str::<Value>(&r.body).is_err());
    // Unencoded brackets are rejected as by Patreon.
    let r = h
        .get(
            "/api/oauth2/v2/identity?fields[user]=full_name",
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 400);
}
