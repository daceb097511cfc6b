//! Failure injection: worker processes killed mid-sweep, the queue losing everything, Redis
//! restarting, Patreon throwing 429s and 5xxs. After each, every member is accounted for, none
//! failed, and no paying member lost access.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use domain::work::sweeps::{self, Progress};
use entity::user;
use patreon_mock::{EndpointFault, Faults, MockUser};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use test_support::{Backend, eventually, eventually_matching, eventually_true, postgres_enabled};

use crate::helpers::*;

fn backend() -> Backend {
    if postgres_enabled() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A world on `redis_url` whose Patreon answers after `latency_ms`, with `count` paying members
/// numbered from `first`, and no scheduled sweeps of its own.
async fn slow_patreon_world(
    redis_url: String,
    lost_after_secs: u32,
    first: u32,
    count: u32,
    latency_ms: u64,
) -> World {
    let w = World::with(Options {
        backend: backend(),
        schedule: NO_TICKS,
        redis_url: Some(redis_url),
        lost_after_secs,
        ..Options::default()
    })
    .await;
    members(&w, first, count).await;
    w.mock.set_faults(Faults {
        latency_ms,
        ..Faults::default()
    });
    w
}

/// `count` paying members signed in, numbered from `first`.
pub async fn members(w: &World, first: u32, count: u32) {
    for n in first..first + count {
        w.signed_in(MockUser::active_patron(&n.to_string(), CAMPAIGN))
            .await;
    }
}

pub async fn start_sweep(w: &World, tick: &str) -> SweepId {
    let sweep = sweeps::start(
        &w.ctx.db,
        tick,
        entity::states::SweepTrigger::Manual,
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    worker::sweeper::reconcile_sweep(&w.ctx, sweep.id, w.ctx.settings.job_lost_after)
        .await
        .unwrap();
    sweep.id
}

pub async fn wait_until(
    w: &World,
    sweep_id: SweepId,
    limit: Duration,
    done: impl Fn(&Progress) -> bool,
) -> Progress {
    eventually_matching(
        "the sweep's progress",
        limit,
        || async { sweeps::progress(&w.ctx.db, sweep_id).await.unwrap() },
        done,
    )
    .await
}

/// Every member checked, none failed, and every one of them still paying.
pub async fn assert_nothing_lost(w: &World, p: &Progress, members: u64) {
    assert_eq!((p.total, p.done, p.failed), (members, members, 0), "{p:?}");
    let paying = user::Entity::find()
        .filter(user::Column::MembershipActive.eq(true))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(paying, members, "a paying member lost access");
}

/// A `worker run` process on the world's configuration, serving `/metrics` on `http_port`.
pub fn worker_process(w: &World, http_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("run")
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WORKER_HTTP_PORT", http_port.to_string())
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("METRICS_TOKEN", WORKER_METRICS_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker binary")
}

/// What [`worker_process`]'s `/metrics` asks a scraper for.
pub const WORKER_METRICS_TOKEN: &str = "failures-metrics-token";

pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_sweep_leaves_nothing_undone() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let w = slow_patreon_world(redis_url, 3, 3000, 30, 40).await;
    let sweep = start_sweep(&w, "kill-test").await;

    let mut first = worker_process(&w, 0);
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    first.kill().unwrap(); // SIGKILL: no drain, jobs in flight, leases held
    first.wait().unwrap();
    let killed_at = sweeps::progress(&w.ctx.db, sweep).await.unwrap();
    assert!(
        killed_at.done < 30,
        "killed too late to prove anything: {killed_at:?}"
    );

    let http_port = free_port();
    let _second = Reaped(worker_process(&w, http_port));
    let p = wait_until(&w, sweep, Duration::from_secs(90), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 30).await;

    // The survivor's metrics tell the same story.
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http_port}/metrics"))
        .bearer_auth(WORKER_METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let body = metrics.text().await.unwrap();
    assert!(
        body.contains(r#"gate_jobs_total{kind="verify_membership",event="succeeded"}"#),
        "{body}"
    );
    assert!(body.contains("gate_jobs_owed 0\n"), "{body}");
    assert!(body.contains("gate_sweep_members_remaining 0\n"), "{body}");
}

/// Deletes every key of this world's deployment: what a `FLUSHALL` or a Redis restart without
/// persistence does to it, without touching other tests sharing the server.
pub async fn lose_all_redis_keys(w: &World) -> usize {
    let url = secrecy::SecretString::from(w.env["REDIS_URL"].clone());
    let mut conn = domain::infra::redis::connect(&url).await.unwrap();
    let pattern = format!("{}*", w.env["REDIS_KEY_PREFIX"]);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    keys.len()
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_losing_everything_mid_sweep_loses_no_check() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let w = slow_patreon_world(redis_url, 2, 3100, 30, 60).await;
    let sweep = start_sweep(&w, "flush-test").await;
    let _worker = tokio::spawn(worker::startup::run_all(
        w.ctx.clone(),
        std::future::pending(),
    ));
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    assert!(
        lose_all_redis_keys(&w).await > 0,
        "the queue had keys to lose"
    );
    let p = wait_until(&w, sweep, Duration::from_secs(90), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 30).await;
}

/// A Redis server of this test's own, so it can be killed and started again.
struct OwnRedis {
    port: u16,
    process: Option<Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Option<OwnRedis> {
        let process = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .ok()?;
        Some(OwnRedis {
            port,
            process: Some(process),
        })
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    async fn wait_ready(&self) {
        eventually_true("redis-server to start", Duration::from_secs(10), || {
            std::future::ready(std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok())
        })
        .await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_sweep_is_survived() {
    if test_support::redis_url().is_none() {
        return; // redis-server is there wherever the Redis suite runs
    }
    let port = free_port();
    let mut redis = OwnRedis::start(port).expect("redis-server on PATH");
    redis.wait_ready().await;
    let w = slow_patreon_world(format!("redis://127.0.0.1:{port}"), 2, 3200, 30, 60).await;
    let sweep = start_sweep(&w, "restart-test").await;
    let _worker = tokio::spawn(worker::startup::run_all(
        w.ctx.clone(),
        std::future::pending(),
    ));
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    redis.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _restarted = OwnRedis::start(port).unwrap();
    _restarted.wait_ready().await;
    let p = wait_until(&w, sweep, Duration::from_secs(90), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_and_random_5xx_never_cost_a_paying_member_access() {
    let w = World::with(Options {
        backend: backend(),
        schedule: NO_TICKS,
        ..Options::default()
    })
    .await;
    members(&w, 3300, 40).await;
    w.mock.set_faults(Faults {
        identity: EndpointFault {
            fail_next: 30,
            status: 429,
            retry_after_secs: Some(1),
            ..EndpointFault::default()
        },
        random_5xx_percent: 5,
        ..Faults::default()
    });
    let sweep = start_sweep(&w, "storm-test").await;
    let _worker = tokio::spawn(worker::startup::run_all(
        w.ctx.clone(),
        std::future::pending(),
    ));
    let p = wait_until(&w, sweep, Duration::from_secs(90), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 40).await;
    let rate_limited = entity::membership_check::Entity::find()
        .filter(entity::membership_check::Column::Error.eq("rate_limited"))
        .count(&w.ctx.db)
        .await
        .unwrap();
    assert_eq!(rate_limited, 30, "every 429 was met, recorded and retried");
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_mid_sweep_exits_cleanly_and_loses_nothing() {
    let Some(redis_url) = test_support::redis_url() else {
        return;
    };
    let w = slow_patreon_world(redis_url, 3, 3400, 30, 40).await;
    let sweep = start_sweep(&w, "sigterm-test").await;
    let mut first = worker_process(&w, 0);
    wait_until(&w, sweep, Duration::from_secs(60), |p| p.done >= 5).await;
    let term = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    // Jobs get 8 s to finish; the process must be gone within the 10 s platforms allow.
    let status = eventually(
        "the worker to exit after SIGTERM",
        Duration::from_secs(10),
        || std::future::ready(first.try_wait().unwrap()),
    )
    .await;
    assert!(status.success(), "a graceful stop exits 0: {status:?}");

    let _second = Reaped(worker_process(&w, 0));
    let p = wait_until(&w, sweep, Duration::from_secs(90), Progress::is_complete).await;
    assert_nothing_lost(&w, &p, 30).await;
}
