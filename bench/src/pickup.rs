//! `pickup-bench`: how long a job waits between its push and its start on an idle worker, on
//! the Redis queue (`REDIS_URL` set) or the embedded SQLite queue. Pushes one member's recheck
//! at a time, waits for it to finish, and reads push and start times from `job_requests`.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::Context;
use base64::Engine;
use domain::{
    members::membership_checks::CheckTrigger,
    work::job_requests::{self, Requested},
};
use patreon_mock::{MockConfig, MockPatreon, MockUser};

const CAMPAIGN: &str = "1234560";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    domain::infra::telemetry::init("warn");
    let samples: usize = std::env::var("BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mock = MockPatreon::start(MockConfig {
        campaign_id: CAMPAIGN.into(),
        ..MockConfig::default()
    })
    .await?;
    let dir = std::env::temp_dir().join(format!("gate-pickup-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut env: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            format!("sqlite://{}/gate.db?mode=rwc", dir.display()),
        ),
        (
            "QUEUE_SQLITE_URL",
            format!("sqlite://{}/queue.db?mode=rwc", dir.display()),
        ),
        (
            "JWT_SECRET",
            format!("bench-{:032x}", rand::random::<u128>()),
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
        (
            "REDIS_KEY_PREFIX",
            format!("gate-bench-{:016x}", rand::random::<u64>()),
        ),
    ]);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        env.insert("DATABASE_URL", url);
    }
    if let Ok(url) = std::env::var("REDIS_URL") {
        env.insert("REDIS_URL", url);
    }
    let settings = domain::infra::config::Settings::from_lookup(|k| env.get(k).cloned())?;
    let db = domain::infra::db::connect(&settings.database_url, 5).await?;
    domain::infra::db::migrate(&db).await?;
    let redis = domain::infra::redis::connect_if_configured(settings.redis_url.as_ref()).await?;
    let queue = domain::work::jobs::JobQueue::open(&settings, redis.as_ref()).await?;
    let patreon = domain::patreon::client_for(
        &settings.patreon,
        redis.as_ref(),
        &settings.redis_key_prefix,
        Some(&db),
    )?;

    // One member, signed in through the mock as the api would.
    mock.upsert_user(MockUser::active_patron("7001", CAMPAIGN));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let authorize = format!("{}&as=7001", patreon.authorize_url("bench"));
    let location = http.get(authorize).send().await?.headers()["location"]
        .to_str()?
        .to_owned();
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let grant = patreon.exchange_code(&code).await?;
    let identity = patreon.identity(&grant.access_token).await?;
    let user = domain::members::users::record_sign_in(
        &db,
        &settings.token_cipher,
        &settings.membership,
        &identity,
        &grant,
        chrono::Utc::now(),
    )
    .await?;

    let ctx = worker::WorkerCtx {
        db: db.clone(),
        queue: queue.clone(),
        patreon,
        settings: Arc::new(settings),
    };
    tokio::spawn(worker::startup::run(
        ctx,
        queue.clone(),
        std::future::pending(),
    ));
    tokio::time::sleep(Duration::from_secs(1)).await; // the worker is up and idle

    let mut waits = Vec::new();
    for _ in 0..samples {
        let requested = job_requests::request_verification(
            &db,
            user.id,
            user.id,
            CheckTrigger::Admin,
            chrono::Duration::zero(),
            chrono::Utc::now(),
        )
        .await?;
        let Requested::New(request) = requested else {
            anyhow::bail!("a recheck is still open");
        };
        queue.push(job_requests::job_for(&request)).await?;
        let finished = loop {
            let r = job_requests::find(&db, &request.id)
                .await?
                .context("request gone")?;
            if r.finished_at.is_some() {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let started = finished.started_at.context("never started")?;
        waits.push((started - finished.created_at).to_std().unwrap_or_default());
        // Idle between samples, as the target is about an idle worker.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if std::env::var("BENCH_VERBOSE").is_ok() {
        eprintln!("{waits:?}");
    }
    waits.sort();
    let at = |q: f64| waits[((waits.len() as f64 * q).ceil() as usize).clamp(1, waits.len()) - 1];
    let backend = if env.contains_key("REDIS_URL") {
        "Redis"
    } else {
        "embedded SQLite"
    };
    println!(
        "pickup on {backend}: {} jobs, push to start p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        waits.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0
    );
    mock.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
