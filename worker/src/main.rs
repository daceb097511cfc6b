//! The worker binary: runs queued jobs, and operator commands.
//!
//! Usage: `worker [run]` (queued jobs and periodic housekeeping), `worker purge` (once),
//! `worker rotate-keys`, `worker verify <patreon user id>` (check one member against Patreon now).

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use std::sync::Arc;

use domain::{
    config::Settings,
    jobs::JobQueue,
    membership_checks::CheckTrigger,
    patreon::PatreonClient,
    verification::{Verification, Verifier},
};
use sea_orm::DatabaseConnection;
use worker::WorkerCtx;

async fn purge(db: &DatabaseConnection) -> anyhow::Result<u64> {
    let now = chrono::Utc::now();
    Ok(domain::sign_in::purge_expired(db, now).await?
        + domain::sessions::purge_ended(db, now).await?)
}

/// `worker verify <patreon id>`: an operator's immediate recheck of one member.
async fn verify(settings: &Settings, db: &DatabaseConnection) -> anyhow::Result<()> {
    let patreon_id = std::env::args()
        .nth(2)
        .context("usage: worker verify <patreon user id>")?;
    let user = domain::users::find_by_patreon_id(db, &patreon_id)
        .await?
        .with_context(|| format!("no member with Patreon id {patreon_id}"))?;
    let patreon = PatreonClient::new(settings.patreon.clone())?;
    let verifier = Verifier {
        patreon: &patreon,
        cipher: &settings.token_cipher,
        policy: &settings.membership,
        refresh_within: chrono::Duration::days(1),
    };
    match verifier.verify(db, user.id, CheckTrigger::Admin).await? {
        Verification::Verified {
            changed,
            granted,
            reason,
        } => println!(
            "{patreon_id}: {} ({}){}",
            if granted {
                "paying member"
            } else {
                "not a paying member"
            },
            reason.as_str(),
            if changed { ", changed" } else { "" }
        ),
        Verification::NeedsRelogin => {
            println!("{patreon_id}: needs to sign in again; last known status kept")
        }
    }
    Ok(())
}

/// `worker [run]`: runs queued jobs and periodic housekeeping until SIGTERM or Ctrl-C.
async fn run_jobs(settings: Settings, db: DatabaseConnection) -> anyhow::Result<()> {
    let redis = match &settings.redis_url {
        Some(url) => Some(
            domain::redis::connect(url)
                .await
                .context("cannot reach Redis at REDIS_URL")?,
        ),
        None => None,
    };
    let queue = JobQueue::open(&settings, redis.as_ref()).await?;
    let ctx = WorkerCtx {
        patreon: PatreonClient::new(settings.patreon.clone())?,
        db: db.clone(),
        settings: Arc::new(settings),
    };
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            match purge(&db).await {
                Ok(n) => tracing::info!(removed = n, "housekeeping done"),
                Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
            }
        }
    });
    tracing::info!("worker running");
    let result = worker::startup::run(ctx, queue, shutdown_signal()).await;
    housekeeping.abort();
    result
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! { r = tokio::signal::ctrl_c() => r, _ = term.recv() => Ok(()) }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let db = domain::db::connect(&settings.database_url, settings.database_max_connections)
        .await
        .context("cannot open the database at DATABASE_URL")?;
    match std::env::args().nth(1).as_deref().unwrap_or("run") {
        "purge" => println!("removed {} expired rows", purge(&db).await?),
        "rotate-keys" => {
            let report = domain::key_rotation::reencrypt_all(&db, &settings.token_cipher).await?;
            println!(
                "re-encrypted {} users' tokens ({} changed concurrently and were left as they are)",
                report.reencrypted, report.skipped
            );
        }
        "verify" => verify(&settings, &db).await?,
        "run" => run_jobs(settings, db).await?,
        other => anyhow::bail!("unknown command {other:?}; use run, purge, rotate-keys or verify"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    domain::telemetry::init("info");
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}
