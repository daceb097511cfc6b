//! `sweep-bench`: one sweep of N members against the Patreon mock with a fixed latency per call,
//! run by a real `worker sweep --now` process. Reports the sweep's wall time, Patreon calls per
//! second against the allowed rate, 429s, the worker's CPU per verified member and peak RSS.
//! Driven by `bench/sweep.sh`, which says what the variables mean.

use std::{collections::HashMap, process::Stdio, time::Instant};

use anyhow::{Context, bail};
use base64::Engine;
use futures_util::StreamExt;
use patreon_mock::{Faults, GENERATED_FIRST_ID, MockConfig, MockPatreon, RateLimit};
use url::Url;

const CAMPAIGN: &str = "1234560";

fn var<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().ok().with_context(|| format!("bad {name}"))
        }
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let users: u64 = var("BENCH_USERS", 10_000)?;
    let latency_ms: u64 = var("BENCH_LATENCY_MS", 100)?;
    let patreon_limit: bool = var("BENCH_PATREON_LIMIT", true)?;
    let budget: u32 = var(
        "BENCH_BUDGET_PER_2S",
        if patreon_limit { 95 } else { 100_000 },
    )?;
    let concurrency: u32 = var("BENCH_CONCURRENCY", 16)?;
    let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;
    let worker_bin = var("WORKER_BIN", "target/release/worker".to_owned())?;

    let mock = MockPatreon::start(MockConfig {
        campaign_id: CAMPAIGN.into(),
        ..MockConfig::default()
    })
    .await?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut env: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        (
            "JWT_SECRET",
            format!("bench-{}{}{}", hex_id(), hex_id(), hex_id()),
        ),
        ("TOKEN_ENCRYPTION_KEY", key),
        ("PATREON_CLIENT_ID", "mock-client-id".into()),
        ("PATREON_CLIENT_SECRET", "mock-client-secret".into()),
        (
            "PATREON_REDIRECT_URI",
            "https://gate.example.com/callback".into(),
        ),
        ("PATREON_CAMPAIGN_ID", CAMPAIGN.into()),
        ("PATREON_BASE_URL", mock.base_url()),
        ("FRONTEND_URL", "https://app.example.com".into()),
        ("PATREON_REQUESTS_PER_2S", budget.to_string()),
        ("PATREON_REQUESTS_PER_TOKEN_PER_MIN", "100000".into()),
        ("WORKER_CONCURRENCY", concurrency.to_string()),
        ("REDIS_KEY_PREFIX", format!("gate-bench-{}", hex_id())),
        ("RUST_LOG", "warn".into()),
    ]);
    if let Ok(url) = std::env::var("REDIS_URL") {
        env.insert("REDIS_URL", url);
    }
    let settings = domain::infra::config::Settings::from_lookup(|k| env.get(k).cloned())?;
    let db = domain::infra::db::connect(&settings.database_url, 10).await?;
    domain::infra::db::migrate(&db).await?;

    let seeding = Instant::now();
    mock.upsert_users(patreon_mock::generated_patrons(
        CAMPAIGN,
        GENERATED_FIRST_ID,
        users,
    ));
    // Seeding is set-up, not the thing measured: no budget.
    let patreon = domain::patreon::PatreonClient::new(domain::infra::config::PatreonSettings {
        requests_per_2s: 1_000_000,
        ..settings.patreon.clone()
    })?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = futures_util::stream::iter(0..users)
        .map(|n| sign_in(&http, &patreon, &settings, &db, GENERATED_FIRST_ID + n))
        .buffer_unordered(32)
        .filter(|r| std::future::ready(r.is_ok()))
        .count()
        .await as u64;
    if signed_in != users {
        bail!("only {signed_in} of {users} members could sign in");
    }
    eprintln!(
        "seeded {users} members in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    mock.set_faults(Faults {
        latency_ms,
        rate_limit: patreon_limit.then(RateLimit::default),
        ..Faults::default()
    });
    mock.reset_stats();
    let started = Instant::now();
    let run = tokio::process::Command::new("/usr/bin/time")
        .args(["-f", "bench-time %U %S %M", &worker_bin, "sweep", "--now"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("WORKER_HTTP_PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .context("cannot run the worker under /usr/bin/time")?;
    let elapsed = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let (user_s, sys_s, max_rss_kib) = stderr
        .lines()
        .find_map(|l| {
            let mut f = l.strip_prefix("bench-time ")?.split_whitespace();
            Some((
                f.next()?.parse::<f64>().ok()?,
                f.next()?.parse::<f64>().ok()?,
                f.next()?.parse::<f64>().ok()?,
            ))
        })
        .with_context(|| format!("no timing from the worker: {stderr}"))?;
    if !run.status.success() {
        bail!(
            "the sweep failed: {}{stderr}",
            String::from_utf8_lossy(&run.stdout)
        );
    }
    let stats = mock.stats();
    let calls = stats.identity_calls + stats.token_refresh_grants + stats.member_calls;
    let rate = calls as f64 / elapsed;
    let cpu_ms_per_member = (user_s + sys_s) * 1000.0 / users as f64;
    println!("{}", String::from_utf8_lossy(&run.stdout).trim());
    println!(
        "members={users} latency_ms={latency_ms} patreon_limit={patreon_limit} budget_per_2s={budget} concurrency={concurrency}"
    );
    println!(
        "wall_s={elapsed:.1} patreon_calls={calls} calls_per_s={rate:.1} rate_limited_429={}",
        stats.rate_limited
    );
    if patreon_limit {
        println!(
            "allowed_per_s=50.0 share_of_allowed={:.1}%",
            rate / 50.0 * 100.0
        );
    } else {
        let ceiling = f64::from(concurrency) * 1000.0 / latency_ms as f64;
        println!(
            "concurrency_ceiling_per_s={ceiling:.1} share_of_ceiling={:.1}%",
            rate / ceiling * 100.0
        );
    }
    println!(
        "worker_cpu_s={:.2} cpu_ms_per_member={cpu_ms_per_member:.3} worker_peak_rss_mib={:.1}",
        user_s + sys_s,
        max_rss_kib / 1024.0
    );
    mock.shutdown().await;
    Ok(())
}

fn hex_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Signs member `id` in through the mock's OAuth flow and records them, as the api does.
async fn sign_in(
    http: &reqwest::Client,
    patreon: &domain::patreon::PatreonClient,
    settings: &domain::infra::config::Settings,
    db: &sea_orm::DatabaseConnection,
    id: u64,
) -> anyhow::Result<()> {
    let authorize = format!("{}&as={id}", patreon.authorize_url("bench"));
    let response = http.get(authorize).send().await?;
    let location = response
        .headers()
        .get("location")
        .context("no redirect from authorize")?
        .to_str()?;
    let code = Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let grant = patreon.exchange_code(&code).await?;
    let identity = patreon.identity(&grant.access_token).await?;
    domain::members::users::record_sign_in(
        db,
        &settings.token_cipher,
        &settings.membership,
        &identity,
        &grant,
        chrono::Utc::now(),
    )
    .await?;
    Ok(())
}
