//! Webhooks: registration (creator token only, http(s) URIs), signed deliveries of membership
//! changes with the right trigger, pausing after failures and the backlog on unpause. A small
//! poem server stands in for the receiver; signatures are checked with `hmac` + `md-5` directly.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::Data;
use poem::{Body, EndpointExt, Route, Server, handler, http::StatusCode, post};
use serde_json::{Value, json};

use super::*;
use crate::{MockMembership, MockTier, MockUser};

const CREATOR: &str = "mock-creator-token";
const WEBHOOKS: &str = "/api/oauth2/v2/webhooks";
const ALL_MEMBER_TRIGGERS: [&str; 6] = [
    "members:create",
    "members:update",
    "members:delete",
    "members:pledge:create",
    "members:pledge:update",
    "members:pledge:delete",
];

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    event: String,
    signature: String,
    content_type: String,
    body: String,
}

/// A webhook receiver on 127.0.0.1 answering `status` (changeable) to every POST.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    uri: String,
}

#[handler]
async fn receive(req: &poem::Request, body: Body, Data(r): Data<&Receiver>) -> StatusCode {
    let header = |name: &str| req.header(name).unwrap_or_default().to_string();
    let received = Received {
        event: header("x-patreon-event"),
        signature: header("x-patreon-signature"),
        content_type: header("content-type"),
        body: body.into_string().await.unwrap(),
    };
    r.got.lock().unwrap().push(received);
    StatusCode::from_u16(r.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().unwrap();
        let receiver = Receiver {
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(status)),
            uri: format!("http://{addr}/hook"),
        };
        let app = Route::new()
            .at("/hook", post(receive))
            .data(receiver.clone());
        tokio::spawn(Server::new_with_acceptor(acceptor).run(app));
        receiver
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived, then a little longer to catch any extra one.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        until(|| self.got().len() >= n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.got()
    }
}

async fn until(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn verifies(secret: &str, r: &Received) -> bool {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(r.body.as_bytes());
    let expected = hex::decode(&r.signature).unwrap_or_default();
    mac.verify_slice(&expected).is_ok()
}

fn registration(uri: &str, triggers: &[&str], campaign: &str) -> Value {
    json!({ "data": {
        "type": "webhook",
        "attributes": { "triggers": triggers, "uri": uri },
        "relationships": { "campaign": { "data": { "type": "campaign", "id": campaign } } },
    } })
}

impl H {
    async fn send_json(
        &self,
        method: Method,
        uri: &str,
        bearer: Option<&str>,
        body: &Value,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri_str(uri)
            .header("user-agent", UA)
            .content_type("application/json");
        if let Some(token) = bearer {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        self.send(b.body(Body::from_string(body.to_string()))).await
    }

    /// Registers through the API with the creator token; returns the webhook resource.
    async fn register(&self, uri: &str, triggers: &[&str]) -> Value {
        let body = registration(uri, triggers, CAMPAIGN);
        let r = self
            .send_json(Method::POST, WEBHOOKS, Some(CREATOR), &body)
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["data"].clone()
    }

    async fn set_paused(&self, id: &str, paused: bool) -> Resp {
        let body = json!({ "data": {
            "type": "webhook", "id": id, "attributes": { "paused": paused },
        } });
        self.send_json(
            Method::PATCH,
            &format!("{WEBHOOKS}/{id}"),
            Some(CREATOR),
            &body,
        )
        .await
    }
}

#[tokio::test]
async fn only_the_creator_token_registers_webhooks_for_http_uris() {
    let h = H::seeded().await;
    let body = registration(
        "https://gate.example.com/hook",
        &ALL_MEMBER_TRIGGERS,
        CAMPAIGN,
    );
    let r = h.send_json(Method::POST, WEBHOOKS, None, &body).await;
    assert_401_shape(&r);
    let (member_token, _) = h.login("100000001", "identity").await;
    let r = h
        .send_json(Method::POST, WEBHOOKS, Some(&member_token), &body)
        .await;
    assert_401_shape(&r);
    assert_401_shape(&h.get(WEBHOOKS, Some(&member_token)).await);
    for uri in ["ftp://gate.example.com/hook", "not a url", "https://"] {
        let bad = registration(uri, &ALL_MEMBER_TRIGGERS, CAMPAIGN);
        let r = h
            .send_json(Method::POST, WEBHOOKS, Some(CREATOR), &bad)
            .await;
        assert_eq!(r.status, 400, "{uri}: {}", r.body);
        assert_eq!(
            r.json()["errors"][0]["source"]["pointer"],
            "/data/attributes/uri"
        );
    }
    let unknown = registration(
        "https://gate.example.com/hook",
        &["members:everything"],
        CAMPAIGN,
    );
    let r = h
        .send_json(Method::POST, WEBHOOKS, Some(CREATOR), &unknown)
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let foreign = registration(
        "https://gate.example.com/hook",
        &ALL_MEMBER_TRIGGERS,
        "7654320",
    );
    let r = h
        .send_json(Method::POST, WEBHOOKS, Some(CREATOR), &foreign)
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert!(h.mock.webhooks().is_empty());

    let hook = h
        .register("https://gate.example.com/hook", &ALL_MEMBER_TRIGGERS)
        .await;
    assert_eq!(hook["type"], "webhook");
    let attrs = &hook["attributes"];
    assert_eq!(attrs["uri"], "https://gate.example.com/hook");
    assert_eq!(attrs["triggers"], json!(ALL_MEMBER_TRIGGERS));
    assert_eq!(attrs["paused"], false);
    assert_eq!(attrs["last_attempted_at"], Value::Null);
    assert_eq!(attrs["num_consecutive_times_failed"], 0);
    let secret = attrs["secret"].as_str().unwrap();
    assert!(secret.len() >= 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(hook["relationships"]["campaign"]["data"]["id"], CAMPAIGN);

    let list = h.get(WEBHOOKS, Some(CREATOR)).await.json();
    assert_eq!(list["data"], json!([hook]));
    let second = h
        .register("http://127.0.0.1:9/hook", &["members:update"])
        .await;
    assert_ne!(second["attributes"]["secret"], hook["attributes"]["secret"]);
    assert_eq!(h.mock.webhooks().len(), 2);
}

#[tokio::test]
async fn membership_changes_arrive_signed_with_the_chosen_trigger() {
    let h = H::seeded().await;
    let receiver = Receiver::start(200).await;
    let hook = h.register(&receiver.uri, &ALL_MEMBER_TRIGGERS).await;
    let secret = hook["attributes"]["secret"].as_str().unwrap().to_string();
    // Only hears of new pledges: gets the first change below and nothing else.
    let narrow = Receiver::start(200).await;
    h.register(&narrow.uri, &["members:pledge:create"]).await;

    // Ada cancels through the admin route.
    let mut ada = ada();
    ada.memberships = vec![MockMembership::former("100000001", CAMPAIGN)];
    let r = h
        .send_json(Method::PUT, "/__mock/users/100000001", None, &json!(ada))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = receiver.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, "members:pledge:delete");
    assert_eq!(got[0].content_type, "application/json");
    assert!(verifies(&secret, &got[0]), "signature does not verify");
    assert!(!verifies("another secret", &got[0]));
    let doc: Value = serde_json::from_str(&got[0].body).unwrap();
    let data = &doc["data"];
    assert_eq!(data["type"], "member");
    assert_eq!(data["attributes"]["patron_status"], "former_patron");
    assert_eq!(data["attributes"]["email"], "ada@example.com");
    assert_eq!(data["relationships"]["user"]["data"]["id"], "100000001");
    assert_eq!(data["relationships"]["campaign"]["data"]["id"], CAMPAIGN);
    let kinds: Vec<&str> = doc["included"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["campaign", "user"]);
    assert!(
        doc["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(data["id"].as_str().unwrap())
    );

    // A new patron, a declined charge, an unchanged save, a removed user.
    h.mock.upsert_user(MockUser::active_patron("555", CAMPAIGN));
    h.mock.set_membership(
        "555",
        CAMPAIGN,
        Some(MockMembership::declined(
            "555",
            CAMPAIGN,
            MockTier::supporter(),
        )),
    );
    h.mock.upsert_user(h.mock.user("555").unwrap());
    assert!(h.mock.remove_user("555"));
    let got = receiver.wait_for(4).await;
    let events: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "members:pledge:delete",
            "members:pledge:create",
            "members:update",
            "members:pledge:delete"
        ]
    );
    assert!(got.iter().all(|r| verifies(&secret, r)));
    let removed: Value = serde_json::from_str(&got[3].body).unwrap();
    assert_eq!(
        removed["data"]["attributes"]["patron_status"],
        "former_patron"
    );
    assert_eq!(
        removed["data"]["attributes"]["currently_entitled_amount_cents"],
        0
    );
    let created: Value = serde_json::from_str(&got[1].body).unwrap();
    let tiers = created["included"].as_array().unwrap().iter();
    assert_eq!(tiers.filter(|i| i["type"] == "tier").count(), 1);

    let narrow_got = narrow.wait_for(1).await;
    assert_eq!(narrow_got.len(), 1);
    assert_eq!(narrow_got[0].event, "members:pledge:create");
    assert_eq!(h.mock.stats().webhook_deliveries, 5);
    // Other campaigns' memberships are not this creator's business.
    h.mock.set_membership("100000005", "7654320", None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.got().len(), 4);
}

#[tokio::test]
async fn three_failures_pause_and_unpausing_sends_the_backlog_in_order() {
    let h = H::seeded().await;
    let receiver = Receiver::start(500).await;
    let id = h.register(&receiver.uri, &ALL_MEMBER_TRIGGERS).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    h.mock.set_membership("100000001", CAMPAIGN, None);
    until(|| h.mock.webhooks()[0].paused).await;
    let hook = &h.mock.webhooks()[0];
    assert_eq!(hook.num_consecutive_times_failed, 3);
    assert!(hook.last_attempted_at.is_some());
    assert_eq!(hook.queued, 1);
    assert_eq!(receiver.got().len(), 3, "the same event was retried");

    // Paused: a new event is queued, not sent.
    h.mock.set_membership(
        "100000004",
        CAMPAIGN,
        Some(MockMembership::active(
            "100000004",
            CAMPAIGN,
            MockTier::supporter(),
        )),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 3);
    assert_eq!(h.mock.webhooks()[0].queued, 2);
    let listed = h.get(WEBHOOKS, Some(CREATOR)).await.json();
    assert_eq!(listed["data"][0]["attributes"]["paused"], true);
    assert_eq!(
        listed["data"][0]["attributes"]["num_consecutive_times_failed"],
        3
    );

    receiver.status.store(204, Ordering::SeqCst);
    let r = h.set_paused(&id, false).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["attributes"]["paused"], false);
    let got = receiver.wait_for(5).await;
    let events: Vec<&str> = got[3..].iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, ["members:pledge:delete", "members:pledge:create"]);
    let hook = &h.mock.webhooks()[0];
    assert_eq!((hook.queued, hook.num_consecutive_times_failed), (0, 0));
    let stats = h.mock.stats();
    assert_eq!((stats.webhook_deliveries, stats.webhook_failures), (2, 3));

    assert_eq!(h.set_paused("999", false).await.status, 404);
}

#[tokio::test]
async fn the_payload_has_the_shape_of_a_captured_delivery() {
    let h = H::seeded().await;
    let receiver = Receiver::start(200).await;
    h.register(&receiver.uri, &ALL_MEMBER_TRIGGERS).await;
    // Fran (former, no tiers) as in the sample: only her last charge date moves.
    let mut fran = h
        .mock
        .user("100000003")
        .unwrap()
        .membership(CAMPAIGN)
        .cloned()
        .unwrap();
    fran.last_charge_date = Some("2023-12-29T05:26:19+00:00".into());
    h.mock.set_membership("100000003", CAMPAIGN, Some(fran));
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].event, "members:update");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        super::shapes::shape(&body),
        super::shapes::sample(include_str!(
            "../../fixtures/webhook-members-pledge-create.json"
        ))
    );
}
