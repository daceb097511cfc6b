//! The mock's payloads have exactly the key paths of the real samples in `fixtures/`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::{EndpointFault, Faults};

fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                paths(child, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

pub(super) fn shape(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out
}

pub(super) fn sample(text: &str) -> BTreeSet<String> {
    shape(&serde_json::from_str(text).unwrap())
}

#[tokio::test]
async fn identity_matches_sample_shape() {
    let h = H::seeded().await;
    let (token, _) = h.login("100000001", "identity identity[email]").await;
    let q = [
        (
            "include",
            "memberships.campaign,memberships.currently_entitled_tiers",
        ),
        ("fields[user]", "email,full_name,image_url"),
        (
            "fields[member]",
            "patron_status,currently_entitled_amount_cents,last_charge_status,last_charge_date,\
             next_charge_date,pledge_relationship_start",
        ),
        ("fields[tier]", "title,amount_cents"),
    ];
    let got = shape(&h.identity(&token, &q).await.json());
    assert_eq!(
        got,
        sample(include_str!(
            "../../fixtures/identity-with-memberships.json"
        ))
    );
}

#[tokio::test]
async fn members_page_matches_sample_shape() {
    let h = H::seeded().await;
    let q = query(&[
        ("include", "user,currently_entitled_tiers"),
        (
            "fields[member]",
            "patron_status,last_charge_status,last_charge_date,next_charge_date,\
             currently_entitled_amount_cents,will_pay_amount_cents,pledge_cadence,is_free_trial,is_gifted",
        ),
        ("fields[tier]", "title,amount_cents"),
        ("fields[user]", "full_name"),
        ("page[count]", "3"),
    ]);
    let uri = format!("/api/oauth2/v2/campaigns/{CAMPAIGN}/members?{q}");
    let got = shape(&h.get(&uri, Some("mock-creator-token")).await.json());
    assert_eq!(
        got,
        sample(include_str!("../../fixtures/campaign-members-page.json"))
    );
}

#[tokio::test]
async fn error_bodies_match_samples() {
    let h = H::seeded().await;
    let r = h.get("/api/oauth2/v2/identity", Some("nope")).await;
    assert_eq!(
        shape(&r.json()),
        sample(include_str!("../../fixtures/error-401-unauthorized.json"))
    );
    let identity = EndpointFault {
        fail_next: 1,
        status: 429,
        ..Default::default()
    };
    h.mock.set_faults(Faults {
        identity,
        ..Default::default()
    });
    let r = h.get("/api/oauth2/v2/identity", Some("nope")).await;
    assert_eq!(
        shape(&r.json()),
        sample(include_str!("../../fixtures/error-429-rate-limited.json"))
    );
    let (_, refresh) = h.login("100000001", "identity").await;
    h.mock.revoke_app("100000001");
    let r = h.refresh(&refresh).await;
    assert_eq!(
        shape(&r.json()),
        sample(include_str!(
            "../../fixtures/token-error-invalid-grant.json"
        ))
    );
    let code = h.code("100000001", "identity").await;
    let r = h.exchange(&code).await;
    assert_eq!(
        shape(&r.json()),
        sample(include_str!("../../fixtures/token-response.json"))
    );
}
