//! The worker. For now it keeps the sign-in tables tidy and re-encrypts stored Patreon tokens
//! after a key rotation; membership jobs arrive with the worker issue.
//!
//! Usage: `worker [run]` (periodic housekeeping), `worker purge` (once), `worker rotate-keys`.

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use domain::config::Settings;
use sea_orm::DatabaseConnection;

async fn purge(db: &DatabaseConnection) -> anyhow::Result<u64> {
    let now = chrono::Utc::now();
    Ok(domain::sign_in::purge_expired(db, now).await?
        + domain::sessions::purge_ended(db, now).await?)
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
        "run" => {
            tracing::info!("worker running: housekeeping every 10 minutes");
            let mut tick = tokio::time::interval(Duration::from_secs(600));
            loop {
                tokio::select! {
                    _ = tick.tick() => match purge(&db).await {
                        Ok(n) => tracing::info!(removed = n, "housekeeping done"),
                        Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
                    },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
        other => anyhow::bail!("unknown command {other:?}; use run, purge or rotate-keys"),
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
