//! `worker webhook register|status|enable` against the mock's webhooks API, with deliveries
//! failing until a receiver appears on the registered port.

use std::time::Duration;

use domain::infra::metrics::metrics;
use domain::patreon::PatreonClient;
use patreon_mock::MockUser;
use poem::{Route, Server, http::StatusCode, listener::TcpListener, post};
use secrecy::SecretString;
use test_support::{Backend, eventually_true};
use worker::cli::{Cli, Command};
use worker::webhook_commands::{delivery_uri, run};
use worker::webhook_watch::observe;

use crate::helpers::*;

/// The world's Patreon client, given the creator token the webhook commands need.
fn creator_client(world: &World) -> PatreonClient {
    let mut settings = world.ctx.patreon.settings().clone();
    settings.creator_access_token = Some(SecretString::from("mock-creator-token"));
    PatreonClient::new(settings).unwrap()
}

/// Runs `worker webhook <args>`; returns what it printed and whether it succeeded.
async fn webhook(patreon: &PatreonClient, args: &[&str]) -> (String, anyhow::Result<()>) {
    let mut out = Vec::new();
    let result = match Cli::command_from(["webhook"].iter().chain(args)) {
        Ok(Command::Webhook(command)) => run(patreon, command, &mut out).await,
        Ok(other) => panic!("{args:?} is not a webhook command: {other:?}"),
        Err(usage) => Err(usage.into()),
    };
    (String::from_utf8(out).unwrap(), result)
}

/// A loopback port with nothing listening on it (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn only_https_or_loopback_http_uris_are_accepted() {
    for ok in [
        "https://gate.example.com/api/patreon/webhook",
        "http://127.0.0.1:8080/api/patreon/webhook",
        "http://localhost/api/patreon/webhook",
    ] {
        assert!(delivery_uri(ok).is_ok(), "{ok}");
    }
    for refused in [
        "http://gate.example.com/api/patreon/webhook",
        "http://127.0.0.1.example.com/hook",
        "ftp://gate.example.com/hook",
        "gate.example.com/hook",
    ] {
        assert!(delivery_uri(refused).is_err(), "{refused}");
    }
}

#[tokio::test]
async fn register_shows_the_secret_once_and_never_registers_a_uri_twice() {
    let world = World::new(Backend::Sqlite).await;
    let uri = "https://gate.example.com/api/patreon/webhook";
    let (_, without_token) = webhook(&world.ctx.patreon, &["register", uri]).await;
    let message = format!("{:#}", without_token.unwrap_err());
    assert!(
        message.contains("PATREON_CREATOR_ACCESS_TOKEN"),
        "{message}"
    );

    let patreon = creator_client(&world);
    let (printed, result) = webhook(&patreon, &["register", uri]).await;
    result.unwrap();
    let hooks = world.mock.webhooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].uri, uri);
    assert_eq!(hooks[0].triggers, domain::patreon::MEMBER_TRIGGERS);
    assert_eq!(printed.matches(&hooks[0].secret).count(), 1, "{printed}");
    assert!(printed.contains("PATREON_WEBHOOK_SECRET"), "{printed}");

    let (_, again) = webhook(&patreon, &["register", uri]).await;
    assert!(again.is_err());
    let (_, plain_http) = webhook(&patreon, &["register", "http://gate.example.com/h"]).await;
    assert!(plain_http.is_err());
    assert_eq!(world.mock.webhooks().len(), 1);
    let (printed, result) = webhook(&patreon, &["status"]).await;
    result.unwrap();
    assert!(
        printed.contains(uri) && printed.contains("active"),
        "{printed}"
    );
    assert!(
        !printed.contains(&hooks[0].secret),
        "status shows the secret"
    );
}

#[tokio::test]
async fn status_fails_while_paused_and_enable_brings_the_backlog() {
    let world = World::new(Backend::Sqlite).await;
    let patreon = creator_client(&world);
    let port = free_port();
    let uri = format!("http://127.0.0.1:{port}/api/patreon/webhook");
    webhook(&patreon, &["register", &uri]).await.1.unwrap();
    let id = world.mock.webhooks()[0].id.clone();

    // Nothing listens yet: the mock fails three times and pauses the webhook.
    world
        .mock
        .upsert_user(MockUser::active_patron("7001", CAMPAIGN));
    eventually_true("the webhook to be paused", Duration::from_secs(10), || {
        std::future::ready(world.mock.webhooks()[0].paused)
    })
    .await;
    let (printed, result) = webhook(&patreon, &["status"]).await;
    assert!(
        result.is_err(),
        "a paused webhook must fail the status check"
    );
    assert!(
        printed.contains("PAUSED") && printed.contains("failures in a row: 3"),
        "{printed}"
    );
    // The worker's watch sees it too, and says so on /metrics for the alert rules.
    let seen = observe(&patreon).await.unwrap();
    assert_eq!(
        (seen.active, seen.paused, seen.most_consecutive_failures),
        (0, 1, 3)
    );
    let scraped = metrics()
        .render(
            &world.ctx.db,
            &world.ctx.settings.verify_schedule,
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    assert!(
        scraped.contains("gate_patreon_webhooks{state=\"paused\"} 1")
            && scraped.contains("gate_patreon_webhook_consecutive_failures 3"),
        "{scraped}"
    );

    // The receiver comes up; unpausing delivers the queued event and clears the failures.
    let app = Route::new().at(
        "/api/patreon/webhook",
        post(poem::endpoint::make_sync(|_| StatusCode::OK)),
    );
    let server = tokio::spawn(Server::new(TcpListener::bind(("127.0.0.1", port))).run(app));
    test_support::eventually_true(
        "the receiver to listen",
        Duration::from_secs(10),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        },
    )
    .await;
    let (printed, result) = webhook(&patreon, &["enable", &id]).await;
    result.unwrap();
    assert!(printed.contains("unpaused"), "{printed}");
    eventually_true("the backlog to be sent", Duration::from_secs(10), || {
        std::future::ready(world.mock.webhooks()[0].queued == 0)
    })
    .await;
    let (printed, result) = webhook(&patreon, &["status"]).await;
    assert!(result.is_ok(), "{printed}");
    assert!(printed.contains("failures in a row: 0"), "{printed}");
    let seen = observe(&patreon).await.unwrap();
    assert_eq!(
        (seen.active, seen.paused, seen.most_consecutive_failures),
        (1, 0, 0)
    );
    assert_eq!(world.mock.stats().webhook_deliveries, 1);
    assert!(webhook(&patreon, &["enable", "999"]).await.1.is_err());
    assert!(webhook(&patreon, &["unknown"]).await.1.is_err());
    server.abort();
}
