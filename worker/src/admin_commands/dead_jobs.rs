//! `worker dead-jobs list|retry`: checks that gave up, as `/api/admin/dead-jobs` lists them,
//! named by a ref that `retry` accepts.

use std::io::Write;

use anyhow::{bail, ensure};
use clap::{ArgGroup, Subcommand};
use domain::JobRequestId;
use domain::work::dead_letters::{self, DeadJobRef};

use super::{table, when};
use crate::WorkerCtx;

#[derive(Debug, Subcommand)]
pub enum DeadJobsCommand {
    /// Lists the checks that gave up, each with the ref `retry` takes.
    List,
    /// Queues a dead job again, or all of them.
    #[command(group = ArgGroup::new("which").required(true).args(["job_ref", "all"]))]
    Retry {
        /// A ref from `worker dead-jobs list`: recheck:<id> or sweep:<sweep id>:<user id>.
        #[arg(value_name = "REF")]
        job_ref: Option<String>,
        /// Every dead job (up to 1000 of each kind in one run).
        #[arg(long)]
        all: bool,
    },
}

/// How many of each kind `list` shows and `retry --all` retries in one run.
const BATCH: u64 = 1000;

/// `recheck:<request id>` or `sweep:<sweep id>:<user id>`.
pub fn format_ref(job: &DeadJobRef) -> String {
    match job {
        DeadJobRef::Recheck { request_id } => format!("recheck:{request_id}"),
        DeadJobRef::SweepItem { sweep_id, user_id } => format!("sweep:{sweep_id}:{user_id}"),
    }
}

pub fn parse_ref(raw: &str) -> anyhow::Result<DeadJobRef> {
    let parsed = match raw.split(':').collect::<Vec<_>>().as_slice() {
        ["recheck", id] if !id.is_empty() => Some(DeadJobRef::Recheck {
            request_id: JobRequestId::from(*id),
        }),
        ["sweep", sweep, user] => match (sweep.parse(), user.parse()) {
            (Ok(sweep_id), Ok(user_id)) => Some(DeadJobRef::SweepItem { sweep_id, user_id }),
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some(job) => Ok(job),
        None => bail!(
            "{raw:?} is not a dead job ref: use one that `worker dead-jobs list` prints \
             (recheck:<id> or sweep:<sweep id>:<user id>)"
        ),
    }
}

pub async fn list(ctx: &WorkerCtx, out: &mut impl Write) -> anyhow::Result<()> {
    let dead = dead_letters::list(&ctx.db, BATCH).await?;
    if dead.is_empty() {
        writeln!(out, "no dead jobs")?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = dead
        .iter()
        .map(|d| {
            vec![
                format_ref(&d.job),
                d.patreon_id.as_deref().unwrap_or_default().to_owned(),
                d.error.clone().unwrap_or_default(),
                d.attempts.to_string(),
                when(d.failed_at),
            ]
        })
        .collect();
    let header = ["REF", "PATREON ID", "ERROR", "ATTEMPTS", "FAILED AT"];
    table::write(out, &header, &rows)?;
    writeln!(
        out,
        "{} dead job(s); `worker dead-jobs retry <ref>` queues one again",
        dead.len()
    )?;
    Ok(())
}

pub async fn retry(ctx: &WorkerCtx, raw: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let job = parse_ref(raw)?;
    ensure!(
        dead_letters::retry(&ctx.db, &ctx.queue, &job).await?,
        "{raw} is not a dead job (unknown, or already retried); `worker dead-jobs list` shows them"
    );
    writeln!(out, "queued {raw} again")?;
    Ok(())
}

pub async fn retry_all(ctx: &WorkerCtx, out: &mut impl Write) -> anyhow::Result<()> {
    let dead = dead_letters::list(&ctx.db, BATCH).await?;
    let mut queued = 0;
    for d in &dead {
        // `false`: retried meanwhile, or the member has another check open that will run.
        if dead_letters::retry(&ctx.db, &ctx.queue, &d.job).await? {
            queued += 1;
        }
    }
    writeln!(out, "queued {queued} of {} dead job(s) again", dead.len())?;
    Ok(())
}
