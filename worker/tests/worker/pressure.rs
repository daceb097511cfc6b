//! Patreon's rate limits under pressure, with real `worker` processes: a 429 storm during a
//! sweep, and two processes on the embedded default sharing one budget through the database.

use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use domain::work::sweeps::{self, Progress};
use patreon_mock::{Faults, RateLimit};
use test_support::{Backend, eventually};

use crate::failures::{Reaped, assert_nothing_lost, free_port, members, worker_process};
use crate::helpers::*;

/// A `worker sweep --now` process on the world's configuration.
fn sweep_now_process(w: &World) -> Reaped {
    let child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["sweep", "--now"])
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WORKER_HTTP_PORT", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker binary");
    Reaped(child)
}

/// The sweep `sweep --now` started, once it exists.
async fn started_sweep(w: &World) -> SweepId {
    eventually(
        "sweep --now to start its sweep",
        Duration::from_secs(30),
        || async {
            let recent = sweeps::recent(&w.ctx.db, 1).await.unwrap();
            recent.first().map(|s| s.id)
        },
    )
    .await
}

async fn progress(w: &World, sweep: SweepId) -> Progress {
    sweeps::progress(&w.ctx.db, sweep).await.unwrap()
}

async fn exit_status(process: &mut Reaped, within: Duration) -> ExitStatus {
    eventually("sweep --now to exit", within, || {
        let exited = process.0.try_wait().unwrap();
        async move { exited }
    })
    .await
}

/// A world on `backend` with `count` paying members numbered from `first`; no sweeps of its own.
async fn world_with_members(backend: Backend, first: u32, count: u32) -> World {
    let w = World::with(Options {
        backend,
        schedule: NO_TICKS,
        ..Options::default()
    })
    .await;
    members(&w, first, count).await;
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_slows_a_sweep_down_and_gives_up_on_no_member() {
    const MEMBERS: u32 = 100;
    let backend = if test_support::postgres_enabled() {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let w = world_with_members(backend, 5000, MEMBERS).await;
    // The storm: Patreon allows 5 calls per 2 s (we budget 95) while a sweep of 100 runs.
    w.mock.set_faults(Faults {
        rate_limit: Some(RateLimit {
            per_client_per_2s: 5,
            per_token_per_min: 0,
        }),
        ..Faults::default()
    });
    let mut sweep_now = sweep_now_process(&w);
    let sweep = started_sweep(&w).await;
    // It lasts while 20 members are verified at 5 calls per 2 s: at least 8 s of 429s.
    eventually_true_verified(&w, sweep, 20).await;
    let storm = w.mock.stats().rate_limited;
    assert!(storm > 0, "the storm answered 429s");
    w.mock.set_faults(Faults::default());

    let status = exit_status(&mut sweep_now, Duration::from_secs(120)).await;
    assert!(
        status.success(),
        "sweep --now exits 0 after a storm: {status:?}"
    );
    let p = progress(&w, sweep).await;
    assert_nothing_lost(&w, &p, u64::from(MEMBERS)).await;
    assert_eq!(p.verified, u64::from(MEMBERS), "{p:?}");
    let dead = domain::work::dead_letters::list(&w.ctx.db, 1000)
        .await
        .unwrap();
    assert!(dead.is_empty(), "no member was given up: {dead:?}");
}

async fn eventually_true_verified(w: &World, sweep: SweepId, verified: u64) {
    eventually(
        "members verified under the storm",
        Duration::from_secs(120),
        || async {
            let p = progress(w, sweep).await;
            assert_eq!(p.failed, 0, "a member was given up during the storm: {p:?}");
            (p.verified >= verified).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_run_and_sweep_now_share_one_budget_without_redis() {
    const MEMBERS: u32 = 120;
    let mut w = world_with_members(Backend::Sqlite, 6000, MEMBERS).await;
    assert!(!w.env.contains_key("REDIS_URL"), "the embedded default");
    // Patreon (the mock) allows 24 calls per 2 s; the deployment budgets 20, each process alone
    // would be within it, both together would not.
    w.env.insert("PATREON_REQUESTS_PER_2S", "20".into());
    // A sweep tick three days ahead (and none before): sweeps refresh only tokens that would
    // expire before the next tick plus a week, so as in production, none of these (31 days).
    let tick = chrono::Utc::now() + chrono::Duration::days(3);
    w.env.insert(
        "VERIFY_SCHEDULE",
        tick.format("0 0 0 %-d %-m * %Y").to_string(),
    );
    w.mock.set_faults(Faults {
        rate_limit: Some(RateLimit {
            per_client_per_2s: 24,
            per_token_per_min: 100,
        }),
        ..Faults::default()
    });
    w.mock.reset_stats();
    let http_port = free_port();
    let _run = Reaped(worker_process(&w, http_port));
    let mut sweep_now = sweep_now_process(&w);
    let sweep = started_sweep(&w).await;

    let status = exit_status(&mut sweep_now, Duration::from_secs(180)).await;
    assert!(status.success(), "sweep --now exits 0: {status:?}");
    let p = progress(&w, sweep).await;
    assert_nothing_lost(&w, &p, u64::from(MEMBERS)).await;
    let stats = w.mock.stats();
    assert_eq!(
        stats.rate_limited, 0,
        "no 2 s window over Patreon's limit: {stats:?}"
    );
    let calls = stats.identity_calls + stats.member_calls + stats.token_refresh_grants;
    assert!(
        calls <= u64::from(MEMBERS) * 105 / 100,
        "{calls} calls to Patreon for {MEMBERS} members: {stats:?}"
    );
    // Both processes did the sweep's work, so the budget really was shared.
    let metrics = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{http_port}/metrics"))
        .bearer_auth(crate::failures::WORKER_METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let by_run = metrics
        .lines()
        .find(|l| l.starts_with(r#"gate_jobs_total{kind="verify_membership",event="succeeded"}"#))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(
        by_run > 0.0 && by_run < f64::from(MEMBERS),
        "worker run checked {by_run} of {MEMBERS} members"
    );
}
