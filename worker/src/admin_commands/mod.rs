//! Operator commands on members and jobs: `worker users|admins|dead-jobs|sessions …`. They act
//! through the same `domain` functions as the admin API, so audit rows, queued jobs and the
//! api's auth caches behave exactly as they do for the dashboard.

mod dead_jobs;
mod roles;
mod table;
mod users;

use std::io::Write;

use anyhow::{Context, bail};
use entity::user;
use sea_orm::ConnectionTrait;

use crate::WorkerCtx;

pub use users::{RECHECK_WAIT_LIMIT, recheck};

/// The first words of the commands handled here.
pub const COMMANDS: [&str; 4] = ["users", "admins", "dead-jobs", "sessions"];

pub const USAGE: &str =
    "usage: worker users list [--search TEXT] [--status active|inactive|needs-relogin] [--limit N]
       worker users show <patreon user id>
       worker users recheck <patreon user id> [--wait]
       worker admins grant|revoke <patreon user id>
       worker admins list
       worker dead-jobs list
       worker dead-jobs retry <ref>|--all
       worker sessions revoke <patreon user id>";

/// Runs one of [`COMMANDS`] (`args` from the command's first word), writing what the operator
/// reads to `out`. Errors (an unknown member, bad arguments) change nothing.
pub async fn run(ctx: &WorkerCtx, args: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["users", "list", flags @ ..] => users::list(ctx, flags, out).await,
        ["users", "show", id] => users::show(ctx, id, out).await,
        ["users", "recheck", id] => users::recheck(ctx, id, None, out).await,
        ["users", "recheck", id, "--wait"] | ["users", "recheck", "--wait", id] => {
            users::recheck(ctx, id, Some(RECHECK_WAIT_LIMIT), out).await
        }
        ["admins", "grant", id] => roles::grant(ctx, id, out).await,
        ["admins", "revoke", id] => roles::revoke(ctx, id, out).await,
        ["admins", "list"] => roles::list(ctx, out).await,
        ["dead-jobs", "list"] => dead_jobs::list(ctx, out).await,
        ["dead-jobs", "retry", "--all"] => dead_jobs::retry_all(ctx, out).await,
        ["dead-jobs", "retry", job] => dead_jobs::retry(ctx, job, out).await,
        ["sessions", "revoke", id] => revoke_sessions(ctx, id, out).await,
        _ => bail!("{USAGE}"),
    }
}

/// The member with Patreon user id `patreon_id`, or an error saying there is none.
async fn member(db: &impl ConnectionTrait, patreon_id: &str) -> anyhow::Result<user::Model> {
    if !domain::patreon::resources::is_numeric_id(patreon_id) {
        bail!("{patreon_id:?} is not a Patreon user id (those are numbers)");
    }
    domain::members::users::find_by_patreon_id(db, patreon_id)
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
        None => u.patreon_id.clone(),
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
