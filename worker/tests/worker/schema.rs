//! A worker started before the api (on a database not migrated yet) waits, unready, and says
//! what to do; one-off commands refuse with the same advice and change nothing.

use std::process::Command;
use std::time::Duration;

use test_support::{Backend, TestDb, eventually_matching};

use crate::failures::{Reaped, free_port};
use crate::helpers::*;

async fn readyz(port: u16) -> Option<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

async fn wait_for_readyz(port: u16, status: u16) -> String {
    let what = format!("/readyz to answer {status}");
    let seen = eventually_matching(
        &what,
        Duration::from_secs(15),
        || readyz(port),
        |seen| matches!(seen, Some((s, _)) if *s == status),
    )
    .await;
    seen.expect("an answer").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_on_an_unmigrated_database_waits_until_it_is_migrated() {
    let w = World::new(Backend::Sqlite).await;
    let empty = TestDb::create(Backend::Sqlite).await;
    let port = free_port();
    let worker = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
        command
            .args(args)
            .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("DATABASE_URL", &empty.url)
            .env("WORKER_HTTP_PORT", port.to_string())
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("RUST_LOG", "warn");
        command
    };
    let _running = Reaped(worker(&["run"]).spawn().unwrap());
    let body = wait_for_readyz(port, 503).await;
    assert_eq!(body, "database not migrated yet");

    let db = domain::infra::db::connect(&empty.url, 1).await.unwrap();
    let before = domain::infra::db::schema_state(&db).await.unwrap();
    let domain::infra::db::SchemaState::Behind(pending) = &before else {
        panic!("an empty database is behind: {before:?}")
    };
    let listed = worker(&["users", "list"]).output().unwrap();
    assert_eq!(listed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&listed.stderr);
    let missing = format!("missing {} migration(s)", pending.len());
    assert!(
        stderr.contains(&missing) && stderr.contains("run `migration up`"),
        "{stderr}"
    );
    assert_eq!(
        domain::infra::db::schema_state(&db).await.unwrap(),
        before,
        "the refused command changed nothing"
    );

    domain::infra::db::migrate(&db).await.unwrap();
    assert_eq!(wait_for_readyz(port, 200).await, "ok");
    let listed = worker(&["users", "list"]).output().unwrap();
    assert!(listed.status.success(), "{listed:?}");
}
