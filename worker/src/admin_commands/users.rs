//! `worker users list|show|recheck`: the admin dashboard's member views and "Recheck now".

use std::{io::Write, time::Duration};

use anyhow::{Context, bail};
use chrono::Utc;
use clap::{Args, Subcommand, ValueEnum};
use domain::JobRequestId;
use domain::{
    auth::admins,
    members::listing::{self, MemberQuery, MemberSort, StatusFilter},
    members::membership_checks::CheckTrigger,
    work::ledger::{self, Requested, requests},
};
use entity::states::RequestStatus;
use entity::{job_request, membership_check, user};

use super::{member, named, table, when, yes_no};
use crate::WorkerCtx;

/// How long `users recheck --wait` waits for the outcome. A recheck waits for the member's
/// running check and Patreon's rate budget, so allow for both, but do not hang a terminal.
pub const RECHECK_WAIT_LIMIT: Duration = Duration::from_secs(60);
const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 1000;
/// Checks shown by `users show`.
const HISTORY: u64 = 20;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Lists members by name: Patreon id, name, email, paid access, last checked, admin.
    List(ListArgs),
    /// Shows one member's fields and their last 20 checks.
    Show {
        /// The member's Patreon user id.
        patreon_id: String,
    },
    /// Queues a check as the dashboard's "Recheck now" does and prints its job id (`worker
    /// verify` checks in-process instead).
    Recheck {
        /// The member's Patreon user id.
        patreon_id: String,
        /// Follow the check (up to 60 s) and print its outcome.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only members whose name, email or Patreon id contains TEXT (any case).
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    /// Only members with this access.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// At most N members.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..=MAX_LIMIT))]
    limit: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StatusArg {
    /// Paid access now.
    Active,
    /// No paid access now.
    Inactive,
    /// Must sign in again before Patreon can be asked.
    NeedsRelogin,
}

impl From<ListArgs> for MemberQuery {
    fn from(args: ListArgs) -> Self {
        MemberQuery {
            search: args.search,
            status: args.status.map(|status| match status {
                StatusArg::Active => StatusFilter::Paying,
                StatusArg::Inactive => StatusFilter::NotPaying,
                StatusArg::NeedsRelogin => StatusFilter::NeedsRelogin,
            }),
            sort: MemberSort::Name,
            limit: args.limit,
            ..MemberQuery::default()
        }
    }
}

/// `users list`: the members `filters` select, as a table.
pub async fn list(ctx: &WorkerCtx, filters: ListArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let query = MemberQuery::from(filters);
    let now = Utc::now();
    let stale_after = ctx.settings.stale_after;
    let (total, page) = listing::list(&ctx.db, &query, stale_after, now).await?;
    if page.is_empty() {
        writeln!(out, "no members match")?;
        return Ok(());
    }
    let bootstrap = &ctx.settings.admin_patreon_ids;
    let rows: Vec<Vec<String>> = page
        .iter()
        .map(|u| {
            vec![
                u.patreon_id.to_string(),
                u.full_name.clone().unwrap_or_default(),
                u.email.clone().unwrap_or_default(),
                yes_no(listing::is_paid_member(u, stale_after, now)).to_owned(),
                when(u.last_checked),
                yes_no(admins::is_admin(u, bootstrap)).to_owned(),
            ]
        })
        .collect();
    let header = [
        "PATREON ID",
        "NAME",
        "EMAIL",
        "ACCESS",
        "LAST CHECKED",
        "ADMIN",
    ];
    table::write(out, &header, &rows)?;
    writeln!(out, "{} of {total} member(s)", page.len())?;
    Ok(())
}

/// `users show <patreon id>`: the member's fields and their recent checks.
pub async fn show(ctx: &WorkerCtx, patreon_id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let u = member(&ctx.db, patreon_id).await?;
    let now = Utc::now();
    let text = |v: &Option<String>| v.as_deref().map_or_else(String::new, table::printable);
    let fields = [
        ("patreon id", u.patreon_id.to_string()),
        ("name", text(&u.full_name)),
        ("email", text(&u.email)),
        ("tier", text(&u.tier_title)),
        ("patron status", text(&u.patron_status)),
        ("last charge", last_charge(&u)),
        ("entitled", format!("{} cents", u.entitled_amount_cents)),
        ("rule granted", yes_no(u.membership_active).to_owned()),
        (
            "paid access now",
            yes_no(listing::is_paid_member(&u, ctx.settings.stale_after, now)).to_owned(),
        ),
        ("last checked", when(u.last_checked)),
        ("needs relogin", yes_no(u.needs_relogin).to_owned()),
        ("admin", admin_role(&u, ctx)),
        ("first sign-in", when(Some(u.created_at))),
    ];
    for (name, value) in fields {
        writeln!(out, "{:<16} {value}", format!("{name}:"))?;
    }
    let checks = listing::history(&ctx.db, u.id, HISTORY).await?;
    writeln!(out)?;
    if checks.is_empty() {
        writeln!(out, "no checks recorded")?;
        return Ok(());
    }
    writeln!(out, "recent checks, newest first:")?;
    let rows: Vec<Vec<String>> = checks.iter().map(check_row).collect();
    let header = ["WHEN", "TRIGGER", "OUTCOME", "ACCESS", "REASON", "ERROR"];
    table::write(out, &header, &rows)?;
    Ok(())
}

fn last_charge(u: &user::Model) -> String {
    match (&u.last_charge_status, u.last_charge_date) {
        (Some(status), date) => format!("{status} on {}", when(date)),
        (None, _) => String::new(),
    }
}

fn admin_role(u: &user::Model, ctx: &WorkerCtx) -> String {
    let by_config = ctx
        .settings
        .admin_patreon_ids
        .contains(u.patreon_id.as_str());
    match (u.is_admin, by_config) {
        (true, true) => "yes (database, ADMIN_PATREON_IDS)",
        (true, false) => "yes (database)",
        (false, true) => "yes (ADMIN_PATREON_IDS)",
        (false, false) => "no",
    }
    .to_owned()
}

fn check_row(c: &membership_check::Model) -> Vec<String> {
    let access = |a: Option<bool>| a.map_or("-", yes_no);
    let change = match (c.old_active, c.new_active) {
        (None, None) => String::new(),
        (old, new) if old == new => access(new).to_owned(),
        (old, new) => format!("{} -> {}", access(old), access(new)),
    };
    vec![
        when(Some(c.checked_at)),
        c.trigger.as_str().to_owned(),
        c.outcome.as_str().to_owned(),
        change,
        c.access_reason.clone().unwrap_or_default(),
        c.error.clone().unwrap_or_default(),
    ]
}

/// `users recheck <patreon id> [--wait]`: queues a check as the dashboard's "Recheck now" does,
/// and with `wait` follows it until it ends or `wait` passes.
pub async fn recheck(
    ctx: &WorkerCtx,
    patreon_id: &str,
    wait: Option<Duration>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let u = member(&ctx.db, patreon_id).await?;
    let requested = ledger::request_recheck(
        &ctx.db,
        &ctx.queue,
        u.id,
        CheckTrigger::Admin,
        None,
        chrono::Duration::zero(),
    )
    .await
    .map_err(|e| match e {
        domain::Error::Queue(_) => {
            anyhow::Error::new(e).context("cannot queue the recheck; nothing was queued")
        }
        e => e.into(),
    })?;
    let job = match requested {
        Requested::New(job) => {
            writeln!(out, "queued recheck {} of {}", job.id, named(&u))?;
            job
        }
        Requested::AlreadyOpen(job) => {
            let (id, status) = (&job.id, job.status.as_str());
            writeln!(out, "recheck {id} of {} is already {status}", named(&u))?;
            job
        }
        Requested::TooSoon(left) => bail!(
            "the last check of {} finished in the future by this clock; retry in {}s",
            named(&u),
            left.num_seconds() + 1
        ),
    };
    let Some(limit) = wait else {
        return Ok(());
    };
    let done = wait_for(ctx, &job.id, limit).await?;
    if done.status != RequestStatus::Succeeded {
        let error = done.error.as_deref().unwrap_or("unknown error");
        bail!("recheck {} failed: {error}", job.id);
    }
    let result = done.result.as_deref().unwrap_or("done");
    writeln!(out, "recheck {} succeeded: {result}", job.id)?;
    Ok(())
}

/// Polls request `id` until it finishes, for at most `limit`.
async fn wait_for(
    ctx: &WorkerCtx,
    id: &JobRequestId,
    limit: Duration,
) -> anyhow::Result<job_request::Model> {
    let started = tokio::time::Instant::now();
    loop {
        let job = requests::find(&ctx.db, id)
            .await?
            .with_context(|| format!("recheck {id} disappeared"))?;
        if job.finished_at.is_some() {
            return Ok(job);
        }
        if started.elapsed() >= limit {
            bail!(
                "recheck {id} is still {} after {limit:?}; it runs when a worker (`worker run`) \
                 takes it",
                job.status.as_str()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
