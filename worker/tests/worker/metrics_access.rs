//! The worker's `/metrics` is for a scraper with `METRICS_TOKEN` only: by default it is off, and
//! with a token nobody without it reads anything.

use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::{Backend, eventually};

use crate::failures::{Reaped, free_port};
use crate::helpers::*;

/// A `worker run` process serving its HTTP side on a free port, with `extra` settings.
fn worker_serving(w: &World, extra: &[(&str, &str)]) -> (Reaped, u16) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("run")
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .envs(extra.iter().copied())
        .env("WORKER_HTTP_PORT", port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker binary");
    (Reaped(child), port)
}

/// `/metrics` once the worker answers, with `bearer` if given: status and body.
async fn scrape(port: u16, bearer: Option<&str>) -> (u16, String) {
    eventually("the worker's /metrics", Duration::from_secs(20), || async {
        let mut request = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/metrics"));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_metrics_are_refused_without_credentials_by_default() {
    let w = World::new(Backend::Sqlite).await;
    let (_worker, port) = worker_serving(&w, &[("METRICS_TOKEN", "")]);

    let (status, body) = scrape(port, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("METRICS_TOKEN") && !body.contains("gate_"),
        "{body}"
    );
    let (status, _) = scrape(port, Some("guess")).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_workers_metrics_need_it() {
    let w = World::new(Backend::Sqlite).await;
    let token = "worker-scrape-secret-456";
    let (_worker, port) = worker_serving(&w, &[("METRICS_TOKEN", token)]);

    assert_eq!(scrape(port, None).await.0, 401);
    assert_eq!(scrape(port, Some("worker-scrape-secret-45")).await.0, 401);
    let (status, body) = scrape(port, Some(token)).await;
    assert_eq!(status, 200);
    assert!(body.contains("# TYPE gate_jobs_owed gauge"), "{body}");
}
