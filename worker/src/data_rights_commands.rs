//! `worker members export|erase`: an operator answering a member's data request.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use domain::PatreonUserId;
use domain::members::data_rights;
use entity::user;
use sea_orm::DatabaseConnection;

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// Writes everything stored about the member as JSON, to stdout or a file only you can read.
    Export {
        /// The member's Patreon user id.
        patreon_id: String,
        /// Write to FILE (mode 0600) instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Erases the member; without --yes, shows what would be deleted and deletes nothing.
    Erase {
        /// The member's Patreon user id.
        patreon_id: String,
        /// Erase for real.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `worker members <command>`, writing what the operator reads to `out`.
pub async fn run(
    db: &DatabaseConnection,
    command: MembersCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        MembersCommand::Export {
            patreon_id,
            out: file,
        } => export(db, &patreon_id, file.as_deref(), out).await,
        MembersCommand::Erase { patreon_id, yes } => erase(db, &patreon_id, yes, out).await,
    }
}

async fn member(db: &DatabaseConnection, patreon_id: &str) -> anyhow::Result<user::Model> {
    domain::members::users::find_by_patreon_id(db, &PatreonUserId::from(patreon_id))
        .await?
        .with_context(|| format!("no member with Patreon id {patreon_id}"))
}

/// Writes the member's export as JSON to `file`, or to `out`.
async fn export(
    db: &DatabaseConnection,
    patreon_id: &str,
    file: Option<&Path>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let member = member(db, patreon_id).await?;
    let export = data_rights::export(db, member.id).await?;
    let mut json = serde_json::to_string_pretty(&export)?;
    json.push('\n');
    match file {
        None => out.write_all(json.as_bytes())?,
        Some(path) => {
            write_private(path, json.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            writeln!(
                out,
                "wrote everything stored about {patreon_id} to {}",
                path.display()
            )?;
        }
    }
    Ok(())
}

/// Personal data: readable by the operator only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Erases the member with `--yes`; without it, shows what would go and changes nothing.
async fn erase(
    db: &DatabaseConnection,
    patreon_id: &str,
    confirmed: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let member = member(db, patreon_id).await?;
    if !confirmed {
        let plan = data_rights::preview(db, member.id).await?;
        writeln!(out, "erasing member {patreon_id} would delete:")?;
        for (table, rows) in plan.rows() {
            writeln!(out, "  {table}: {rows}")?;
        }
        bail!("nothing was erased; run `worker members erase {patreon_id} --yes` to erase");
    }
    let report = match data_rights::erase(db, member.id).await {
        Err(domain::Error::MemberBusy) => {
            bail!("a check of member {patreon_id} is under way; nothing was erased, try again")
        }
        other => other?,
    };
    tracing::info!(patreon_id, "member erased by an operator");
    writeln!(out, "erased member {patreon_id}:")?;
    for (table, rows) in report.rows() {
        writeln!(out, "  {table}: {rows}")?;
    }
    Ok(())
}
