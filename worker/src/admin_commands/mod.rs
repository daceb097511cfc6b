//! Operator commands on members and jobs: `worker users|admins|dead-jobs|sessions …`. They act
//! through the same `domain` functions as the admin API, so audit rows, queued jobs and the
//! api's auth caches behave exactly as they do for the dashboard.

mod dead_jobs;
mod roles;
mod table;
mod users;

use domain::PatreonUserId;
use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use entity::user;
use sea_orm::ConnectionTrait;

use crate::WorkerCtx;

pub use users::{RECHECK_WAIT_LIMIT, recheck};

pub use dead_jobs::DeadJobsCommand;
pub use roles::AdminsCommand;
pub use users::{ListArgs, UsersCommand};

/// The top-level commands handled here.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Lists, shows and rechecks members, as the admin dashboard does.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Grants, revokes and lists the admin role.
    #[command(subcommand)]
    Admins(AdminsCommand),
    /// Lists checks that gave up, and queues them again.
    #[command(subcommand)]
    DeadJobs(DeadJobsCommand),
    /// Ends a member's sign-ins.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Ends every sign-in of the member at once and prints how many.
    Revoke {
        /// The member's Patreon user id.
        patreon_id: String,
    },
}

/// Runs `command`, writing what the operator reads to `out`. Errors (an unknown member, a bad
/// value) change nothing.
pub async fn run(
    ctx: &WorkerCtx,
    command: AdminCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use AdminCommand::{Admins, DeadJobs, Sessions, Users};
    match command {
        Users(UsersCommand::List(filters)) => users::list(ctx, filters, out).await,
        Users(UsersCommand::Show { patreon_id }) => users::show(ctx, &patreon_id, out).await,
        Users(UsersCommand::Recheck { patreon_id, wait }) => {
            let wait = wait.then_some(RECHECK_WAIT_LIMIT);
            users::recheck(ctx, &patreon_id, wait, out).await
        }
        Admins(AdminsCommand::Grant { patreon_id }) => roles::grant(ctx, &patreon_id, out).await,
        Admins(AdminsCommand::Revoke { patreon_id }) => roles::revoke(ctx, &patreon_id, out).await,
        Admins(AdminsCommand::List) => roles::list(ctx, out).await,
        DeadJobs(DeadJobsCommand::List) => dead_jobs::list(ctx, out).await,
        DeadJobs(DeadJobsCommand::Retry { all: true, .. }) => dead_jobs::retry_all(ctx, out).await,
        DeadJobs(DeadJobsCommand::Retry { job_ref, .. }) => {
            // clap requires one of the two.
            let job_ref = job_ref.context("a dead job ref or --all")?;
            dead_jobs::retry(ctx, &job_ref, out).await
        }
        Sessions(SessionsCommand::Revoke { patreon_id }) => {
            revoke_sessions(ctx, &patreon_id, out).await
        }
    }
}

/// The member with Patreon user id `patreon_id`, or an error saying there is none.
async fn member(db: &impl ConnectionTrait, patreon_id: &str) -> anyhow::Result<user::Model> {
    if !domain::patreon::resources::is_numeric_id(patreon_id) {
        bail!("{patreon_id:?} is not a Patreon user id (those are numbers)");
    }
    domain::members::users::find_by_patreon_id(db, &PatreonUserId::from(patreon_id))
        .await?
        .with_context(|| {
            format!(
                "no member with Patreon id {patreon_id} (members appear at their first sign-in or with `worker import-profiles`)"
            )
        })
}

/// A member as one line names them: `1234 (Ada Lovelace)`.
fn named(u: &user::Model) -> String {
    match &u.full_name {
        Some(name) => format!("{} ({})", u.patreon_id, table::printable(name)),
        None => u.patreon_id.to_string(),
    }
}

fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// `worker sessions revoke <patreon id>`: signs the member out everywhere, through the path
/// logout and fraud use, so every api process drops the sessions at once.
async fn revoke_sessions(
    ctx: &WorkerCtx,
    patreon_id: &str,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let u = member(&ctx.db, patreon_id).await?;
    let ended =
        domain::auth::sessions::revoke_all_for_user(&ctx.db, u.id, chrono::Utc::now()).await?;
    writeln!(out, "ended {ended} session(s) of {}", named(&u))?;
    Ok(())
}
