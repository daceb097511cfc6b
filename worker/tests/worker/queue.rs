//! The job queue itself: where the embedded queue lives (api and worker must share it, and are
//! told loudly when they do not), finished jobs trimmed after their retention, and a queue that
//! lost everything noticed within seconds rather than after `JOB_LOST_AFTER_SECS`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::{
    work::queue_identity::{QueueWatch, Role},
    work::sweeps::{self, Progress},
};
use patreon_mock::{Faults, MockUser};
use test_support::{Backend, eventually, eventually_true};

use crate::failures::{
    Reaped, WORKER_METRICS_TOKEN, assert_nothing_lost, free_port, lose_all_redis_keys, members,
    start_sweep, wait_until,
};
use crate::helpers::*;

/// A fresh directory under the system's temp dir, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "gate-queue-{}",
            &domain::infra::secrets::random_id()[..12]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn sub(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `worker <args>` on the world's configuration plus `extra`, started in `cwd`.
fn worker_command(w: &World, cwd: &Path, args: &[&str], extra: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .current_dir(cwd)
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("WORKER_HTTP_PORT", "0")
        .env("RUST_LOG", "warn")
        .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .spawn()
        .expect("worker binary")
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_worker_started_from_different_directories_share_the_default_queue() {
    let dir = TempDir::new();
    let database = dir.sub("db").join("gate.db");
    let w = World::with(Options {
        schedule: NO_TICKS,
        database_url: Some(format!("sqlite://{}?mode=rwc", database.display())),
        default_queue: true,
        ..Options::default()
    })
    .await;
    // This test process plays the api (its working directory is the crate's); the worker runs
    // from a directory of its own, with the same absolute DATABASE_URL and no QUEUE_SQLITE_URL.
    let _worker = Reaped(worker_command(&w, &dir.sub("elsewhere"), &["run"], &[]));
    let member = w.signed_in(MockUser::active_patron("6101", CAMPAIGN)).await;
    let request = w.member_recheck(member).await;
    domain::work::job_requests::push(&w.ctx.db, &w.ctx.queue, &request)
        .await
        .unwrap();

    let finished = eventually("the recheck to finish", Duration::from_secs(60), || async {
        let r = domain::work::job_requests::find(&w.ctx.db, &request.id)
            .await
            .unwrap()?;
        r.finished_at.is_some().then_some(r)
    })
    .await;
    assert_eq!(finished.status, "succeeded", "{finished:?}");
    assert!(
        dir.0.join("db").join("queue.db").exists(),
        "the queue sits beside the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_taking_jobs_from_another_queue_than_the_api_is_not_ready() {
    let w = World::with(Options {
        schedule: NO_TICKS,
        ..Options::default()
    })
    .await;
    let own_queue_file = test_support::TestDb::create(Backend::Sqlite).await;
    let port = free_port();
    let _worker = Reaped(worker_command(
        &w,
        Path::new("."),
        &["run"],
        &[
            ("QUEUE_SQLITE_URL", own_queue_file.url.clone()),
            ("WORKER_HTTP_PORT", port.to_string()),
        ],
    ));
    // The api side, recording its queue (the world's) as a running api does.
    let (db, queue) = (w.ctx.db.clone(), w.ctx.queue.clone());
    let api_side = tokio::spawn(async move {
        let mut api = QueueWatch::start(&db, Role::Api, &queue).await.unwrap();
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            api.look(&db, &queue).await.unwrap();
        }
    });

    let body = eventually(
        "the worker to report the split",
        Duration::from_secs(60),
        || async {
            let (status, body) = get(&format!("http://127.0.0.1:{port}/readyz")).await?;
            (status == 503).then_some(body)
        },
    )
    .await;
    api_side.abort();
    assert!(body.contains("different job queues"), "{body}");
    let own_path = own_queue_file.url.trim_start_matches("sqlite://");
    let own_path = own_path.split('?').next().unwrap();
    assert!(body.contains(own_path), "names the worker's queue: {body}");
}

/// Jobs stored in the world's queue, counted in the queue itself.
async fn jobs_stored(w: &World) -> i64 {
    match &w.ctx.queue {
        domain::work::jobs::JobQueue::Sqlite(storage) => {
            let (n,): (i64,) = sea_orm::sqlx::query_as("SELECT COUNT(*) FROM Jobs")
                .fetch_one(storage.pool())
                .await
                .unwrap();
            n
        }
        domain::work::jobs::JobQueue::Redis(storage) => {
            let url = secrecy::SecretString::from(w.env["REDIS_URL"].clone());
            let mut conn = domain::infra::redis::connect(&url).await.unwrap();
            let key = format!("{}:data", storage.get_config().queue.as_ref());
            redis::cmd("HLEN")
                .arg(key)
                .query_async(&mut conn)
                .await
                .unwrap()
        }
    }
}

async fn finished_jobs_are_trimmed(w: World) {
    let port = free_port();
    let _worker = Reaped(worker_command(
        &w,
        Path::new("."),
        &["run"],
        &[
            ("QUEUE_RETENTION_HOURS", "0".into()),
            ("WORKER_HTTP_PORT", port.to_string()),
            ("METRICS_TOKEN", WORKER_METRICS_TOKEN.into()),
        ],
    ));
    for id in ["6201", "6202"] {
        let member = w.signed_in(MockUser::active_patron(id, CAMPAIGN)).await;
        let request = w.member_recheck(member).await;
        domain::work::job_requests::push(&w.ctx.db, &w.ctx.queue, &request)
            .await
            .unwrap();
        eventually_true("the recheck to finish", Duration::from_secs(60), || async {
            let r = domain::work::job_requests::find(&w.ctx.db, &request.id).await;
            r.unwrap().unwrap().finished_at.is_some()
        })
        .await;
    }
    eventually_true(
        "the finished jobs to be trimmed",
        Duration::from_secs(60),
        || async { jobs_stored(&w).await == 0 },
    )
    .await;
    let metrics = eventually(
        "the queue's size in /metrics",
        Duration::from_secs(30),
        || async {
            let response = reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .bearer_auth(WORKER_METRICS_TOKEN)
                .send()
                .await
                .ok()?;
            let status = response.status().as_u16();
            let body = response.text().await.ok()?;
            (status == 200 && body.contains("gate_queue_jobs{state=\"done\"} 0\n")).then_some(body)
        },
    )
    .await;
    assert!(
        metrics.contains("gate_queue_jobs{state=\"waiting\"} 0\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_trimmed_from_the_embedded_queue() {
    let w = World::with(Options {
        schedule: NO_TICKS,
        lost_after_secs: 4,
        ..Options::default()
    })
    .await;
    finished_jobs_are_trimmed(w).await;
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_trimmed_from_the_redis_queue() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let w = World::with(Options {
        schedule: NO_TICKS,
        lost_after_secs: 4,
        redis_url: Some(redis_url),
        ..Options::default()
    })
    .await;
    finished_jobs_are_trimmed(w).await;
}

/// A world on Redis whose lost-job rule stays at its default (600 s), with 30 paying members
/// and a Patreon slow enough that a sweep is still queued when the queue is lost.
async fn world_with_a_queue_to_lose(first: u32) -> Option<World> {
    let redis_url = test_support::redis_url()?;
    let w = World::with(Options {
        backend: if test_support::postgres_enabled() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        },
        schedule: NO_TICKS,
        redis_url: Some(redis_url),
        lost_after_secs: 600,
        ..Options::default()
    })
    .await;
    members(&w, first, 30).await;
    w.mock.set_faults(Faults {
        latency_ms: 100,
        ..Faults::default()
    });
    Some(w)
}

/// No member's Patreon link was lost on the way (a check cut short mid-refresh loses it).
async fn assert_no_link_lost(w: &World) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let relogin = entity::user::Entity::find()
        .filter(entity::user::Column::NeedsRelogin.eq(true))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(relogin, 0, "members were made to sign in again");
}

/// Two checks at a time: most of the sweep is still waiting in the queue when it is lost.
fn slow_worker(w: &World, args: &[&str]) -> Child {
    worker_command(
        w,
        Path::new("."),
        args,
        &[("WORKER_CONCURRENCY", "2".into())],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_lost_mid_sweep_is_refilled_within_seconds_not_after_job_lost_after() {
    let Some(w) = world_with_a_queue_to_lose(6300).await else {
        return;
    };
    let sweep = start_sweep(&w, "lost-queue-test").await;
    let _worker = Reaped(slow_worker(&w, &["run"]));
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    assert!(
        lose_all_redis_keys(&w).await > 0,
        "the queue had keys to lose"
    );
    let lost_at = sweeps::progress(&w.ctx.db, sweep).await.unwrap();
    assert!(
        lost_at.done < 25,
        "lost too late to prove anything: {lost_at:?}"
    );

    // JOB_LOST_AFTER_SECS is 600: only noticing the loss itself finishes the sweep in time.
    let p = wait_until(&w, sweep, Duration::from_secs(60), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 30).await;
    assert_no_link_lost(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_now_finishes_within_seconds_after_the_queue_lost_everything() {
    let Some(w) = world_with_a_queue_to_lose(6400).await else {
        return;
    };
    let mut sweeping = Reaped(slow_worker(&w, &["sweep", "--now"]));
    let sweep = eventually("the sweep to start", Duration::from_secs(30), || async {
        sweeps::unfinished(&w.ctx.db)
            .await
            .unwrap()
            .first()
            .map(|s| s.id)
    })
    .await;
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    assert!(
        lose_all_redis_keys(&w).await > 0,
        "the queue had keys to lose"
    );

    let status = eventually("sweep --now to exit", Duration::from_secs(60), || {
        let exited = sweeping.0.try_wait().unwrap();
        async move { exited }
    })
    .await;
    assert!(status.success(), "sweep --now exits 0: {status:?}");
    let p = sweeps::progress(&w.ctx.db, sweep).await.unwrap();
    assert_nothing_lost(&w, &p, 30).await;
    assert_no_link_lost(&w).await;
}
