//! `POST /api/patreon/webhook`: signatures (T29–T31, T34), idempotence and order (T32, T33),
//! other campaigns and unknown members (T35), and each kind of change reaching `/api/auth/me`.
//! Signatures are computed here with `hmac` + `md-5`, not with the service's code.

use hmac::{Hmac, Mac};
use patreon_mock::{MockMembership, MockTier, member_id_for};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

pub(crate) const SECRET: &str = "webhook-secret-from-patreon-0123";

pub(crate) fn with_webhooks() -> Options {
    Options::default().with("PATREON_WEBHOOK_SECRET", SECRET)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The member document Patreon would send for `patreon_id` now: the mock's own rendering of
/// `/members/{id}` with the creator token.
pub(crate) async fn member_document(app: &TestApp, patreon_id: &str, campaign: &str) -> String {
    let member = member_id_for(patreon_id, campaign);
    let url = format!(
        "{}/api/oauth2/v2/members/{member}?include=user,campaign,currently_entitled_tiers\
         &fields%5Bmember%5D=patron_status,last_charge_status,last_charge_date,next_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,is_free_trial,email,full_name\
         &fields%5Btier%5D=title,amount_cents",
        app.mock.base_url()
    );
    let response = app
        .client
        .get(url)
        .bearer_auth("mock-creator-token")
        .header("User-Agent", "webhook-test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

async fn deliver(app: &TestApp, trigger: &str, body: &str, signature: Option<&str>) -> StatusCode {
    let mut request = app
        .client
        .post(app.url("/api/patreon/webhook"))
        .header("Content-Type", "application/json")
        .header("X-Patreon-Event", trigger)
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("X-Patreon-Signature", signature);
    }
    request.send().await.unwrap().status()
}

pub(crate) async fn deliver_signed(app: &TestApp, trigger: &str, body: &str) -> StatusCode {
    deliver(app, trigger, body, Some(&sign(body.as_bytes()))).await
}

pub(crate) async fn me(app: &TestApp, jwt: &str) -> (StatusCode, Value) {
    let response = app.me_bearer(jwt).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `/api/auth/me` until `done` holds (the worker applies webhooks in the background).
pub(crate) async fn me_until(
    app: &TestApp,
    jwt: &str,
    done: impl Fn(StatusCode, &Value) -> bool,
) -> Value {
    let (_, body) = test_support::eventually_matching(
        "/api/auth/me to change",
        std::time::Duration::from_secs(15),
        || me(app, jwt),
        |(status, body)| done(*status, body),
    )
    .await;
    body
}

/// Patreon's view after the member cancelled: the charge date does not move.
fn cancelled(patreon_id: &str) -> MockMembership {
    MockMembership {
        last_charge_date: MockMembership::active(patreon_id, CAMPAIGN_ID, MockTier::supporter())
            .last_charge_date,
        ..MockMembership::former(patreon_id, CAMPAIGN_ID)
    }
}

/// Waits until `n` deliveries have been processed (applied, found stale, or set aside).
async fn processed(app: &TestApp, n: i64) {
    let what = format!("{n} deliveries to be processed");
    test_support::eventually_true(&what, std::time::Duration::from_secs(15), || async {
        app.count("webhook_events WHERE status <> 'pending'").await >= n
    })
    .await;
}

/// Waits until the worker has nothing left to do: no delivery pending and no recheck open. What
/// a test then asserts is final, not a snapshot taken while work was still under way.
async fn settle(app: &TestApp) {
    test_support::eventually_true(
        "every delivery processed and every recheck finished",
        std::time::Duration::from_secs(15),
        || async {
            app.count("webhook_events WHERE status = 'pending'").await == 0
                && app
                    .count("job_requests WHERE status IN ('queued', 'running')")
                    .await
                    == 0
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pledge_reaches_the_member_through_a_signed_webhook_on_sqlite() {
    a_cancelled_pledge_reaches_the_member(
        TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await,
    )
    .await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pledge_reaches_the_member_through_a_signed_webhook_on_postgres() {
    if let Some(app) = TestApp::spawn_if_postgres_with(with_webhooks()).await {
        a_cancelled_pledge_reaches_the_member(app).await;
    }
}

async fn a_cancelled_pledge_reaches_the_member(app: TestApp) {
    let member = app.active_patron("9501");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], true);

    app.mock
        .set_membership("9501", CAMPAIGN_ID, Some(cancelled("9501")));
    let body = member_document(&app, "9501", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &body).await,
        StatusCode::OK
    );
    let after = me_until(&app, &jwt, |s, me| {
        s == StatusCode::OK && me["isPaidMember"] == false
    })
    .await;
    assert_eq!(after["membershipActive"], false, "{after}");
    assert_eq!(app.count("webhook_events").await, 1);
    assert!(
        app.count("membership_checks WHERE \"trigger\" = 'webhook'")
            .await
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_or_wrongly_signed_deliveries_change_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9511");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    app.mock
        .set_membership("9511", CAMPAIGN_ID, Some(cancelled("9511")));
    let body = member_document(&app, "9511", CAMPAIGN_ID).await;

    let other_secret = {
        let mut mac = Hmac::<md5::Md5>::new_from_slice(b"someone-elses-secret").unwrap();
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let good = sign(body.as_bytes());
    let mut flipped = good.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).unwrap();
    let long = "a".repeat(10 * 1024);
    let refused = [
        None,                                     // T29: no signature
        Some(""),                                 // T29: empty
        Some(other_secret.as_str()),              // T29: another secret
        Some(flipped.as_str()),                   // one hex digit off
        Some(&good[..30]),                        // T31: wrong length
        Some("zz0123456789abcdef0123456789abcd"), // T31: not hex, right length
        Some(long.as_str()),                      // T31: 10 KB
    ];
    for signature in refused {
        assert_eq!(
            deliver(&app, "members:pledge:delete", &body, signature).await,
            StatusCode::UNAUTHORIZED,
            "{signature:?}"
        );
    }
    // T30: the signature covers the exact bytes: one byte changed, re-serialised, a newline.
    let mut one_byte = body.clone().into_bytes();
    let at = one_byte.iter().position(|b| *b == b'{').unwrap();
    one_byte.insert(at + 1, b' ');
    let one_byte = String::from_utf8(one_byte).unwrap();
    let reserialised =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    for changed in [one_byte, reserialised, format!("{body}\n")] {
        assert_eq!(
            deliver(&app, "members:pledge:delete", &changed, Some(&good)).await,
            StatusCode::UNAUTHORIZED
        );
    }
    settle(&app).await;
    assert_eq!(app.count("webhook_events").await, 0, "nothing stored");
    assert_eq!(
        me(&app, &jwt).await.1["isPaidMember"],
        true,
        "nothing changed"
    );

    // T31: the right MAC in upper case is the right MAC.
    assert_eq!(
        deliver(
            &app,
            "members:pledge:delete",
            &body,
            Some(&good.to_uppercase())
        )
        .await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_identical_deliveries_have_one_effect() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9521");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    app.mock
        .set_membership("9521", CAMPAIGN_ID, Some(cancelled("9521")));
    let body = member_document(&app, "9521", CAMPAIGN_ID).await;
    for _ in 0..5 {
        assert_eq!(
            deliver_signed(&app, "members:update", &body).await,
            StatusCode::OK
        );
    }
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
    settle(&app).await;
    assert_eq!(app.count("webhook_events").await, 1);
    let changes = app
        .count("membership_checks WHERE \"trigger\" = 'webhook' AND outcome = 'changed'")
        .await;
    assert_eq!(changes, 1, "one state change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_reverse_order_leave_the_newest_state() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9531");
    let jwt = app.sign_in(&member).await.jwt;
    // Patreon's story: the card is declined (older), then the charge is retried and paid (newer).
    let declined = MockMembership::declined("9531", CAMPAIGN_ID, MockTier::supporter());
    app.mock.set_membership("9531", CAMPAIGN_ID, Some(declined));
    let older = member_document(&app, "9531", CAMPAIGN_ID).await;
    let mut paid = MockMembership::active("9531", CAMPAIGN_ID, MockTier::supporter());
    paid.last_charge_date = Some((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
    app.mock.set_membership("9531", CAMPAIGN_ID, Some(paid));
    let newer = member_document(&app, "9531", CAMPAIGN_ID).await;

    app.start_worker().await;
    assert_eq!(
        deliver_signed(&app, "members:update", &newer).await,
        StatusCode::OK
    );
    processed(&app, 1).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &older).await,
        StatusCode::OK
    );
    processed(&app, 2).await;
    settle(&app).await;
    let after = me(&app, &jwt).await.1;
    assert_eq!(after["isPaidMember"], true, "{after}");
    assert_eq!(
        app.count("webhook_events WHERE status = 'stale'").await,
        1,
        "the older delivery was recognised as older"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsigned_trigger_header_decides_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9541");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    // T33: an active member's body, sent as a pledge deletion, keeps them paying.
    let body = member_document(&app, "9541", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &body).await,
        StatusCode::OK
    );
    settle(&app).await;
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], true);
    // And a cancellation sent as a pledge creation still ends paid access.
    app.mock
        .set_membership("9541", CAMPAIGN_ID, Some(cancelled("9541")));
    let body = member_document(&app, "9541", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:create", &body).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_unframed_bodies_are_refused_before_any_work() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    // T34: a declared length over 256 KiB → 413 before the body is read, whatever the signature.
    let host = app.address.trim_start_matches("http://").to_owned();
    let too_long = format!(
        "POST /api/patreon/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-Patreon-Signature: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{{}}",
        sign(b"{}"),
        300 * 1024
    );
    let (status, text) = crate::surface::raw_http(&app, &too_long).await;
    assert_eq!(status, 413, "{text}");
    let signature = sign(b"{}");
    let request = format!(
        "POST /api/patreon/webhook HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         X-Patreon-Signature: {signature}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         2\r\n{{}}\r\n0\r\n\r\n"
    );
    let (status, text) = crate::surface::raw_http(&app, &request).await;
    assert_eq!(status, 411, "{text}");
    // Signed, but not a member document.
    assert_eq!(
        deliver_signed(&app, "members:update", "{\"data\":{\"type\":\"user\"}}").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.count("webhook_events").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_campaigns_are_ignored_and_unknown_members_wait_for_their_sign_in() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    app.start_worker().await;
    // T35: a member of another creator's campaign (the same document, their campaign id).
    let stranger = app.active_patron("9551");
    let foreign = member_document(&app, &stranger, CAMPAIGN_ID)
        .await
        .replace(CAMPAIGN_ID, patreon_mock::OTHER_CAMPAIGN_ID);
    assert_eq!(
        deliver_signed(&app, "members:create", &foreign).await,
        StatusCode::OK
    );
    // Our campaign, but nobody who signed in here yet.
    let newcomer = app.active_patron("9552");
    let early = member_document(&app, &newcomer, CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:create", &early).await,
        StatusCode::OK
    );
    settle(&app).await;
    assert_eq!(app.count("users").await, 0, "no user created");
    assert_eq!(
        app.count("webhook_events WHERE status = 'ignored'").await,
        1
    );
    assert_eq!(
        app.count("webhook_events WHERE status = 'waiting'").await,
        1
    );

    let jwt = app.sign_in(&newcomer).await.jwt;
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], true);
    settle(&app).await;
    assert_eq!(
        app.count("webhook_events WHERE status = 'waiting'").await,
        0,
        "resolved at sign-in"
    );
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_card_keeps_access_in_grace_and_fraud_ends_every_session() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9561");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;

    let declined = MockMembership::declined("9561", CAMPAIGN_ID, MockTier::supporter());
    app.mock.set_membership("9561", CAMPAIGN_ID, Some(declined));
    let body = member_document(&app, "9561", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &body).await,
        StatusCode::OK
    );
    let in_grace = me_until(&app, &jwt, |_, me| {
        me["membershipActive"] == true && me["lastChecked"].is_string()
    })
    .await;
    assert_eq!(
        in_grace["isPaidMember"], true,
        "a declined card keeps access for the grace period"
    );
    settle(&app).await;
    assert_eq!(
        app.count("users WHERE patron_status = 'declined_patron'")
            .await,
        1
    );

    let mut fraud = MockMembership::active("9561", CAMPAIGN_ID, MockTier::supporter());
    fraud.last_charge_status = Some("Fraud".into());
    fraud.last_charge_date = Some(chrono::Utc::now().to_rfc3339());
    app.mock.set_membership("9561", CAMPAIGN_ID, Some(fraud));
    let body = member_document(&app, "9561", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &body).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |status, _| status == StatusCode::UNAUTHORIZED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_secret_the_endpoint_is_not_there() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    assert_eq!(
        deliver(&app, "members:update", "{}", Some(&sign(b"{}"))).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_cancellation_after_a_new_pledge_is_news_and_the_first_a_repeat() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.active_patron("9571");
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    app.mock
        .set_membership("9571", CAMPAIGN_ID, Some(cancelled("9571")));
    let first_cancellation = member_document(&app, "9571", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &first_cancellation).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;

    // They pledge again: a new pledge, charged now, so Patreon's bodies carry new dates.
    let mut again = MockMembership::active("9571", CAMPAIGN_ID, MockTier::supporter());
    let charged = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    again.last_charge_date = Some(charged.clone());
    again.pledge_relationship_start = Some(charged.clone());
    app.mock.set_membership("9571", CAMPAIGN_ID, Some(again));
    let pledged = member_document(&app, "9571", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:pledge:create", &pledged).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == true).await;
    processed(&app, 2).await;

    // The first cancellation's bytes again are a repeat: recorded once, never applied again.
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &first_cancellation).await,
        StatusCode::OK
    );
    assert_eq!(app.count("webhook_events").await, 2);
    assert_eq!(
        app.count("webhook_events WHERE status = 'pending'").await,
        0
    );
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], true);

    // Their second cancellation is about the new charge: news.
    let mut ended = cancelled("9571");
    ended.last_charge_date = Some(charged);
    app.mock.set_membership("9571", CAMPAIGN_ID, Some(ended));
    let second_cancellation = member_document(&app, "9571", CAMPAIGN_ID).await;
    assert_ne!(second_cancellation, first_cancellation);
    assert_eq!(
        deliver_signed(&app, "members:pledge:delete", &second_cancellation).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
    assert_eq!(app.count("webhook_events").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pledges_upgrades_downgrades_and_deletions_reach_the_member() {
    let app = TestApp::spawn_with(Backend::Sqlite, with_webhooks()).await;
    let member = app.add_user(patreon_mock::MockUser::free_member("9581", CAMPAIGN_ID));
    let jwt = app.sign_in(&member).await.jwt;
    app.start_worker().await;
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], false, "free tier");
    let mut events = 0;
    let mut deliver_state = async |trigger: &str, state: Option<MockMembership>| {
        let body = match &state {
            Some(_) => {
                app.mock.set_membership("9581", CAMPAIGN_ID, state);
                member_document(&app, "9581", CAMPAIGN_ID).await
            }
            None => {
                // Patreon sends the deleted member's last record.
                let last = member_document(&app, "9581", CAMPAIGN_ID).await;
                app.mock.set_membership("9581", CAMPAIGN_ID, None);
                last
            }
        };
        assert_eq!(deliver_signed(&app, trigger, &body).await, StatusCode::OK);
        events += 1;
        processed(&app, events).await;
    };
    // Each change is charged later than the one before, as Patreon would.
    let tier = |title: &str, cents: i64, step: i64| {
        let mut m = MockMembership::active(
            "9581",
            CAMPAIGN_ID,
            MockTier::new(&format!("t-{cents}"), title, cents),
        );
        m.last_charge_date =
            Some((chrono::Utc::now() - chrono::Duration::minutes(60 - step * 5)).to_rfc3339());
        m
    };

    deliver_state("members:pledge:create", Some(tier("Supporter", 500, 1))).await;
    let pledged = me_until(&app, &jwt, |_, me| me["isPaidMember"] == true).await;
    assert_eq!(pledged["membershipTier"], "Supporter");

    deliver_state("members:pledge:update", Some(tier("Patron", 1500, 2))).await;
    me_until(&app, &jwt, |_, me| me["membershipTier"] == "Patron").await;

    deliver_state("members:pledge:update", Some(tier("Fan", 300, 3))).await;
    let downgraded = me_until(&app, &jwt, |_, me| me["membershipTier"] == "Fan").await;
    assert_eq!(
        downgraded["isPaidMember"], true,
        "a cheaper paid tier still pays"
    );

    // Back to the free tier, then the member record is deleted at Patreon.
    app.mock.set_membership(
        "9581",
        CAMPAIGN_ID,
        Some(MockMembership::free("9581", CAMPAIGN_ID)),
    );
    let free_again = member_document(&app, "9581", CAMPAIGN_ID).await;
    assert_eq!(
        deliver_signed(&app, "members:update", &free_again).await,
        StatusCode::OK
    );
    me_until(&app, &jwt, |_, me| me["isPaidMember"] == false).await;
    deliver_state("members:delete", None).await;
    settle(&app).await;
    assert_eq!(me(&app, &jwt).await.1["isPaidMember"], false);
}
