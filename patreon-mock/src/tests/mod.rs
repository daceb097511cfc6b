//! In-process tests: the real server is started on port 0 (one test talks raw HTTP to it); the
//! rest drive the same state through the poem endpoint with `Endpoint::call`.

mod api_tests;
mod oauth_tests;
mod shapes;
mod webhook_tests;

use poem::http::{HeaderMap, Method};
use poem::{Body, Endpoint, EndpointExt, Request, Response, endpoint::BoxEndpoint};
use serde_json::Value;

use crate::{MockConfig, MockPatreon, MockUser, app};

pub(super) const UA: &str = "patreon-gate-tests/1.0";
pub(super) const CAMPAIGN: &str = "1234560";
pub(super) const REDIRECT: &str = "http://localhost:3000/auth/callback?x=1";
pub(super) const FULL_QUERY: &[(&str, &str)] = &[
    (
        "include",
        "memberships.campaign,memberships.currently_entitled_tiers",
    ),
    (
        "fields[user]",
        "email,full_name,image_url,is_email_verified",
    ),
    (
        "fields[member]",
        "patron_status,last_charge_status,last_charge_date,next_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,pledge_relationship_start,\
         pledge_cadence,is_free_trial,is_gifted",
    ),
    ("fields[tier]", "title,amount_cents"),
];

pub(super) struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub(super) fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub(super) struct H {
    pub mock: MockPatreon,
    ep: BoxEndpoint<'static, Response>,
}

impl H {
    pub async fn new(config: MockConfig) -> H {
        let mock = MockPatreon::start(config).await.unwrap();
        let ep = app(mock.shared.clone()).boxed();
        H { mock, ep }
    }

    /// Default config with Ada (active), a free member and a patron of another campaign.
    pub async fn seeded() -> H {
        H::new(MockConfig {
            seed_demo_users: true,
            ..MockConfig::default()
        })
        .await
    }

    pub async fn send(&self, req: Request) -> Resp {
        let resp = self.ep.get_response(req).await;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().into_string().await.unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, uri: &str, bearer: Option<&str>) -> Resp {
        let mut b = Request::builder()
            .method(Method::GET)
            .uri_str(uri)
            .header("user-agent", UA);
        if let Some(token) = bearer {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        self.send(b.finish()).await
    }

    pub async fn post_form(&self, uri: &str, pairs: &[(&str, &str)]) -> Resp {
        let req = Request::builder()
            .method(Method::POST)
            .uri_str(uri)
            .header("user-agent", UA)
            .content_type("application/x-www-form-urlencoded")
            .body(Body::from_string(query(pairs)));
        self.send(req).await
    }

    /// Authorize as `user_id` and return the code from the redirect.
    pub async fn code(&self, user_id: &str, scope: &str) -> String {
        let q = query(&[
            ("response_type", "code"),
            ("client_id", "mock-client-id"),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st"),
            ("as", user_id),
        ]);
        let r = self.get(&format!("/oauth2/authorize?{q}"), None).await;
        assert_eq!(r.status, 302, "{}", r.body);
        let loc = url::Url::parse(r.header("location").unwrap()).unwrap();
        loc.query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned()
    }

    pub async fn exchange(&self, code: &str) -> Resp {
        self.post_form(
            "/api/oauth2/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("client_id", "mock-client-id"),
                ("client_secret", "mock-client-secret"),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Resp {
        self.post_form(
            "/api/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", "mock-client-id"),
                ("client_secret", "mock-client-secret"),
            ],
        )
        .await
    }

    /// Full login: returns (access token, refresh token).
    pub async fn login(&self, user_id: &str, scope: &str) -> (String, String) {
        let code = self.code(user_id, scope).await;
        let r = self.exchange(&code).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        (
            v["access_token"].as_str().unwrap().to_string(),
            v["refresh_token"].as_str().unwrap().to_string(),
        )
    }

    pub async fn identity(&self, token: &str, pairs: &[(&str, &str)]) -> Resp {
        self.get(
            &format!("/api/oauth2/v2/identity?{}", query(pairs)),
            Some(token),
        )
        .await
    }
}

pub(super) fn ada() -> MockUser {
    crate::demo_users(CAMPAIGN).remove(0)
}

pub(super) fn assert_401_shape(r: &Resp) {
    assert_eq!(r.status, 401, "{}", r.body);
    let e = &r.json()["errors"][0];
    assert_eq!(e["code"], 1);
    assert_eq!(e["code_name"], "Unauthorized");
    assert_eq!(e["status"], "401");
    assert_eq!(e["title"], "Unauthorized");
    assert!(e["detail"].as_str().unwrap().contains("authorized"));
    assert!(e["id"].is_string());
}
