//! The `worker` binary's commands (declared in [`crate::cli`]).

use std::sync::Arc;

use anyhow::Context;
use domain::PatreonUserId;
use domain::{
    infra::config::Settings, infra::db::SchemaState, members::membership_checks::CheckTrigger,
    members::verification::Verification, work::jobs::JobQueue,
};
use sea_orm::DatabaseConnection;

use crate::{
    WorkerCtx,
    cli::{Command, OneOffCommand},
};

/// Runs `command`.
pub async fn dispatch(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        // Webhook commands only talk to Patreon: they work before the database exists.
        Command::Webhook(command) => {
            let patreon = patreon_client(&settings).await?;
            crate::webhook_commands::run(&patreon, command, &mut std::io::stdout()).await
        }
        Command::Run => {
            let db = open_database(&settings).await?;
            run(context(settings, db).await?).await
        }
        Command::OneOff(command) => {
            let db = open_database(&settings).await?;
            // `run` waits for the api to migrate; a one-off command says what to do instead.
            check_schema(&db).await?;
            one_off(settings, db, command).await
        }
    }
}

async fn open_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    domain::infra::db::connect(&settings.database_url, settings.database_max_connections)
        .await
        .context("cannot open the database at DATABASE_URL")
}

async fn one_off(
    settings: Settings,
    db: DatabaseConnection,
    command: OneOffCommand,
) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    match command {
        OneOffCommand::Admin(command) => {
            let ctx = context(settings, db).await?;
            crate::admin_commands::run(&ctx, command, &mut stdout).await
        }
        OneOffCommand::Purge => {
            let now = chrono::Utc::now();
            let removed = domain::auth::purge_expired_sign_ins(&db, now).await?;
            let old = domain::work::retention::purge(&db, now).await?;
            println!(
                "removed {removed} expired sign-in rows, {} finished rechecks, {} sweeps, {} webhook deliveries, {} leases past their retention",
                old.job_requests, old.sweeps, old.webhook_events, old.leases
            );
            Ok(())
        }
        OneOffCommand::RotateKeys => {
            let report =
                domain::patreon::key_rotation::reencrypt_all(&db, &settings.token_cipher).await?;
            println!(
                "re-encrypted {} users' tokens ({} changed concurrently and were left as they are)",
                report.reencrypted, report.skipped
            );
            Ok(())
        }
        // `now` is required: a sweep never starts by accident.
        OneOffCommand::Sweep { now: _ } => {
            let ctx = context(settings, db).await?;
            let (sweep, p) =
                crate::manual_sweep::sweep_now(&ctx, entity::states::SweepTrigger::Manual).await?;
            println!(
                "sweep {} finished: {} members, {} verified, {} changed, {} skipped (need to sign in again), {} failed",
                sweep.id, p.total, p.verified, p.changed, p.skipped, p.failed
            );
            anyhow::ensure!(p.failed == 0, "{} members could not be verified", p.failed);
            Ok(())
        }
        OneOffCommand::ImportProfiles(args) => {
            crate::import_command::run(&db, args, &mut stdout).await
        }
        OneOffCommand::Verify { patreon_id } => {
            verify(&context(settings, db).await?, &patreon_id).await
        }
        OneOffCommand::Members(command) => {
            crate::data_rights_commands::run(&db, command, &mut stdout).await
        }
    }
}

/// A Patreon client counting its calls in the deployment's budget when Redis is configured.
async fn patreon_client(settings: &Settings) -> anyhow::Result<domain::patreon::PatreonClient> {
    let redis = domain::infra::redis::connect_if_configured(settings.redis_url.as_ref())
        .await
        .context("cannot reach Redis at REDIS_URL")?;
    // No database here: without Redis, these few calls count in this process alone.
    Ok(domain::patreon::client_for(
        &settings.patreon,
        redis.as_ref(),
        &settings.redis_key_prefix,
        None,
    )?)
}

async fn context(settings: Settings, db: DatabaseConnection) -> anyhow::Result<WorkerCtx> {
    let redis = domain::infra::redis::connect_if_configured(settings.redis_url.as_ref())
        .await
        .context("cannot reach Redis at REDIS_URL")?;
    Ok(WorkerCtx {
        queue: JobQueue::open(&settings, redis.as_ref()).await?,
        patreon: domain::patreon::client_for(
            &settings.patreon,
            redis.as_ref(),
            &settings.redis_key_prefix,
            Some(&db),
        )?,
        db,
        settings: Arc::new(settings),
    })
}

/// `worker verify <patreon id>`: an operator's immediate recheck of one member.
async fn verify(ctx: &WorkerCtx, patreon_id: &str) -> anyhow::Result<()> {
    let user =
        domain::members::users::find_by_patreon_id(&ctx.db, &PatreonUserId::from(patreon_id))
            .await?
            .with_context(|| format!("no member with Patreon id {patreon_id}"))?;
    match ctx
        .verifier()
        .verify(&ctx.db, user.id, CheckTrigger::Admin)
        .await?
    {
        Verification::Verified {
            changed,
            granted,
            reason,
        } => {
            let status = if granted {
                "paying member"
            } else {
                "not a paying member"
            };
            let changed = if changed { ", changed" } else { "" };
            println!("{patreon_id}: {status} ({}){changed}", reason.as_str());
        }
        Verification::NeedsRelogin => {
            println!("{patreon_id}: needs to sign in again; last known status kept")
        }
    }
    Ok(())
}

/// Fails with what to do when the database is behind this release.
async fn check_schema(db: &DatabaseConnection) -> anyhow::Result<()> {
    let state = domain::infra::db::schema_state(db)
        .await
        .context("cannot read the database's applied migrations")?;
    if let Some(advice) = state.advice() {
        anyhow::bail!(advice);
    }
    if let SchemaState::Ahead(unknown) = state {
        tracing::warn!(?unknown, "the database was migrated by a newer release");
    }
    Ok(())
}

/// `worker [run]`: queued jobs, scheduled sweeps and their reconciliation until SIGTERM or Ctrl-C.
async fn run(ctx: WorkerCtx) -> anyhow::Result<()> {
    tracing::info!("worker running");
    let http_ctx = ctx.clone();
    let http = tokio::spawn(async move {
        if let Err(e) = crate::http::serve(http_ctx).await {
            // Jobs matter more than their metrics: keep working, say why loudly.
            tracing::error!(error = %e, "worker HTTP server (metrics, health) is down");
        }
    });
    let mut shutdown = Box::pin(shutdown_signal());
    let ran = if until_migrated(&ctx.db, &mut shutdown).await {
        crate::startup::run_all(ctx, shutdown).await
    } else {
        Ok(())
    };
    http.abort();
    ran
}

/// How often a worker started before the api looks again for the schema it needs.
const SCHEMA_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// How often it says it is still waiting.
const SCHEMA_NAG: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits until the database has this release's migrations (the api applies them at start, and
/// may start after the worker); `false` when `shutdown` came first. `/readyz` fails meanwhile.
async fn until_migrated(
    db: &DatabaseConnection,
    shutdown: &mut (impl Future<Output = std::io::Result<()>> + Unpin),
) -> bool {
    let mut last_told: Option<tokio::time::Instant> = None;
    loop {
        match domain::infra::db::schema_state(db).await {
            Ok(SchemaState::Current) => return true,
            Ok(SchemaState::Ahead(unknown)) => {
                tracing::warn!(?unknown, "the database was migrated by a newer release");
                return true;
            }
            Ok(behind) => {
                if last_told.is_none_or(|at| at.elapsed() >= SCHEMA_NAG) {
                    let advice = behind.advice().unwrap_or_default();
                    tracing::warn!("{advice}; waiting");
                    last_told = Some(tokio::time::Instant::now());
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the database's migrations"),
        }
        tokio::select! {
            _ = &mut *shutdown => return false,
            () = tokio::time::sleep(SCHEMA_POLL) => {}
        }
    }
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
