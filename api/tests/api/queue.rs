//! The api and the worker must share one job queue: when the running workers take jobs from
//! another one (two queue files, a file per host), the api's `/readyz` says so instead of
//! accepting rechecks and webhooks that nobody will ever run.

use std::time::Duration;

use domain::work::jobs::JobQueue;
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::Value;
use test_support::eventually;

use crate::helpers::*;

/// A real worker (its job loops, scheduler and reconciler) on the app's database and `queue`.
fn start_worker(app: &TestApp, queue: JobQueue) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let ctx = worker::WorkerCtx {
        db: app.db.clone(),
        queue,
        patreon: domain::patreon::client_for(&app.settings.patreon, None, "unused", None).unwrap(),
        settings: app.settings.clone(),
    };
    tokio::spawn(worker::startup::run_all(ctx, std::future::pending()))
}

async fn readiness(app: &TestApp) -> (StatusCode, String) {
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["status"].as_str().unwrap_or_default().to_owned(),
    )
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn readiness_fails_while_the_running_worker_takes_jobs_from_another_queue(app) {
        assert_eq!(readiness(&app).await.0, StatusCode::OK);
        let other_file = TestDb::create(Backend::Sqlite).await;
        let other_queue = JobQueue::sqlite(&other_file.url, "elsewhere").await.unwrap();
        let worker = start_worker(&app, other_queue);

        let problem = eventually("readiness to fail", Duration::from_secs(30), || async {
            let (status, problem) = readiness(&app).await;
            (status == StatusCode::SERVICE_UNAVAILABLE).then_some(problem)
        })
        .await;
        worker.abort();
        assert!(problem.contains("different job queues"), "{problem}");
        let other_path = other_file.url.trim_start_matches("sqlite://");
        let other_path = other_path.split('?').next().unwrap();
        assert!(problem.contains(other_path), "names the worker's queue: {problem}");
    }

    async fn readiness_holds_while_the_running_worker_shares_the_queue(app) {
        let queue = JobQueue::sqlite(&app.settings.queue_sqlite_url, "patreon-gate:jobs")
            .await
            .unwrap();
        let worker = start_worker(&app, queue);
        eventually("the worker to record its queue", Duration::from_secs(30), || async {
            let rows = entity::queue_client::Entity::find().all(&app.db).await.unwrap();
            rows.iter().any(|r| r.role == "worker").then_some(())
        })
        .await;
        let (status, problem) = readiness(&app).await;
        worker.abort();
        assert_eq!(status, StatusCode::OK, "{problem}");
    }
}
