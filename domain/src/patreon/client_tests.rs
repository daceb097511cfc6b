//! The Patreon client against the Patreon mock over HTTP: the flow, and how each failure is typed.

use std::time::Duration;

use patreon_mock::{EndpointFault, Faults, MockConfig, MockPatreon, MockUser};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{PatreonClient, PatreonError, TokenGrant};
use crate::infra::config::PatreonSettings;

const CAMPAIGN: &str = "1234560";
const REDIRECT: &str = "https://gate.example.com/api/auth/patreon/callback";

async fn setup() -> (MockPatreon, PatreonClient) {
    let mock = MockPatreon::start(MockConfig {
        campaign_id: CAMPAIGN.into(),
        ..MockConfig::default()
    })
    .await
    .unwrap();
    mock.upsert_user(MockUser::active_patron("42", CAMPAIGN));
    let client = PatreonClient::new(PatreonSettings {
        client_id: "mock-client-id".into(),
        client_secret: SecretString::from("mock-client-secret"),
        redirect_uri: Url::parse(REDIRECT).unwrap(),
        campaign_id: CAMPAIGN.into(),
        base_url: Url::parse(&mock.base_url()).unwrap(),
        authorize_url: None,
        scopes: "identity identity[email]".into(),
        timeout: Duration::from_secs(1),
        creator_access_token: None,
        webhook_secret: None,
        requests_per_2s: 1000,
        requests_per_token_per_min: 1000,
    })
    .unwrap();
    (mock, client)
}

/// Consents at the mock as user 42 and returns the code from the redirect.
async fn code_for(client: &PatreonClient) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let authorize = format!("{}&as=42", client.authorize_url("some-state"));
    let response = http.get(authorize).send().await.unwrap();
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        location
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1,
        "some-state"
    );
    location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

async fn grant(client: &PatreonClient) -> TokenGrant {
    client.exchange_code(&code_for(client).await).await.unwrap()
}

fn fail_token(mock: &MockPatreon, fault: EndpointFault) {
    mock.set_faults(Faults {
        token: EndpointFault {
            fail_next: 1,
            ..fault
        },
        ..Faults::default()
    });
}

#[tokio::test]
async fn signs_in_reads_the_membership_and_rotates_tokens() {
    let (mock, client) = setup().await;
    let url = client.authorize_url("s");
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    for expected in [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
    ] {
        assert!(
            params.iter().any(|(k, _)| k == expected),
            "{expected} missing from {url}"
        );
    }
    let first = grant(&client).await;
    assert!(first.expires_in > Duration::from_secs(3600));
    let identity = client.identity(&first.access_token).await.unwrap();
    assert_eq!(identity.patreon_id, "42");
    assert!(identity.membership.unwrap().entitled_amount_cents > 0);
    assert_eq!(
        mock.stats().last_token_request_redirect_uri.as_deref(),
        Some(REDIRECT)
    );

    let second = client.refresh(&first.refresh_token).await.unwrap();
    assert!(client.identity(&second.access_token).await.is_ok());
    // Refresh tokens are single use: the old one is now dead, permanently.
    let reused = client.refresh(&first.refresh_token).await.unwrap_err();
    assert!(
        matches!(reused, PatreonError::InvalidGrant { .. }),
        "{reused:?}"
    );
    assert!(reused.is_dead_link() && !reused.is_transient());
}

#[tokio::test]
async fn a_429_is_transient_and_carries_patreons_retry_hint() {
    let (mock, client) = setup().await;
    let code = code_for(&client).await;
    fail_token(
        &mock,
        EndpointFault {
            status: 429,
            retry_after_secs: Some(9),
            ..EndpointFault::default()
        },
    );
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(err, PatreonError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(9)),
        "{err:?}"
    );
    assert!(err.is_transient() && !err.is_dead_link());
}

#[tokio::test]
async fn server_errors_and_timeouts_are_transient() {
    let (mock, client) = setup().await;
    let code = code_for(&client).await;
    fail_token(
        &mock,
        EndpointFault {
            status: 503,
            ..EndpointFault::default()
        },
    );
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(
        matches!(err, PatreonError::Unavailable { status: 503 }),
        "{err:?}"
    );
    assert!(err.is_transient());

    let started = std::time::Instant::now();
    fail_token(
        &mock,
        EndpointFault {
            status: 500,
            hang_ms: 5_000,
            ..EndpointFault::default()
        },
    );
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(matches!(err, PatreonError::Timeout), "{err:?}");
    assert!(err.is_transient());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the 1 s timeout was not honoured"
    );
}

#[tokio::test]
async fn a_revoked_or_expired_token_is_a_dead_link_not_a_retry() {
    let (mock, client) = setup().await;
    let pair = grant(&client).await;
    mock.expire_access_tokens("42");
    let err = client.identity(&pair.access_token).await.unwrap_err();
    assert!(matches!(err, PatreonError::Unauthorized), "{err:?}");
    assert!(err.is_dead_link() && !err.is_transient());

    mock.revoke_app("42");
    let err = client.refresh(&pair.refresh_token).await.unwrap_err();
    assert!(err.is_dead_link(), "{err:?}");
}

#[tokio::test]
async fn malformed_answers_are_bad_responses_not_outages() {
    let (mock, client) = setup().await;
    let code = code_for(&client).await;
    fail_token(
        &mock,
        EndpointFault {
            status: 200,
            bad_json: true,
            ..EndpointFault::default()
        },
    );
    let err = client.exchange_code(&code).await.unwrap_err();
    assert!(matches!(err, PatreonError::BadResponse(_)), "{err:?}");
    assert!(!err.is_transient() && !err.is_dead_link());

    let no_refresh =
        serde_json::json!({"access_token": "a", "expires_in": 60, "token_type": "Bearer"});
    fail_token(
        &mock,
        EndpointFault {
            status: 200,
            body: Some(no_refresh),
            ..EndpointFault::default()
        },
    );
    assert!(matches!(
        client.exchange_code(&code).await,
        Err(PatreonError::BadResponse(_))
    ));
}

#[tokio::test]
async fn browsers_can_be_sent_to_another_authorize_address_than_the_api_calls() {
    let (_mock, client) = setup().await;
    let split = PatreonClient::new(PatreonSettings {
        authorize_url: Some(Url::parse("http://localhost:8090/oauth2/authorize").unwrap()),
        ..client.settings().clone()
    })
    .unwrap();
    let url = split.authorize_url("s");
    assert_eq!(url.origin().ascii_serialization(), "http://localhost:8090");
    assert_eq!(url.path(), "/oauth2/authorize");
    assert!(url.query_pairs().any(|(k, v)| k == "state" && v == "s"));
    assert_ne!(
        client.authorize_url("s").origin(),
        url.origin(),
        "the default follows PATREON_BASE_URL"
    );
}

#[tokio::test]
async fn wrong_client_credentials_are_our_mistake_not_a_dead_link() {
    let (_mock, client) = setup().await;
    let wrong = PatreonClient::new(PatreonSettings {
        client_secret: SecretString::from("not-the-secret"),
        ..client.settings().clone()
    })
    .unwrap();
    let pair = grant(&client).await;
    let err = wrong.refresh(&pair.refresh_token).await.unwrap_err();
    assert!(
        matches!(err, PatreonError::Rejected { status: 401 }),
        "{err:?}"
    );
    assert!(!err.is_dead_link() && !err.is_transient());
}

#[tokio::test]
async fn webhooks_are_registered_listed_and_unpaused_with_the_creator_token() {
    let (mock, without_token) = setup().await;
    assert!(matches!(
        without_token.list_webhooks().await,
        Err(PatreonError::NoCreatorToken)
    ));
    let mut settings = without_token.settings().clone();
    settings.creator_access_token = Some(SecretString::from("mock-creator-token"));
    let client = PatreonClient::new(settings).unwrap();

    let uri = Url::parse("https://gate.example.com/api/patreon/webhook").unwrap();
    let created = client
        .create_webhook(&uri, &super::MEMBER_TRIGGERS)
        .await
        .unwrap();
    let registered = &mock.webhooks()[0];
    assert_eq!(created.id, registered.id);
    assert_eq!(created.uri, uri.as_str());
    assert_eq!(created.triggers, super::MEMBER_TRIGGERS);
    let secret = created
        .secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned());
    assert_eq!(secret.as_deref(), Some(registered.secret.as_str()));
    assert!(!format!("{created:?}").contains(&registered.secret));

    let listed = client.list_webhooks().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].paused && listed[0].num_consecutive_times_failed == 0);
    assert!(client.set_paused(&created.id, true).await.unwrap().paused);
    assert!(mock.webhooks()[0].paused);
    assert!(!client.set_paused(&created.id, false).await.unwrap().paused);
    assert!(matches!(
        client.set_paused("../members", false).await,
        Err(PatreonError::BadResponse(_))
    ));
    assert!(matches!(
        client.set_paused("999", false).await,
        Err(PatreonError::Rejected { status: 404 })
    ));
    mock.set_faults(Faults {
        webhooks: EndpointFault {
            fail_next: 1,
            status: 503,
            ..EndpointFault::default()
        },
        ..Faults::default()
    });
    let outage = client.list_webhooks().await.unwrap_err();
    assert!(outage.is_transient(), "{outage:?}");
}
