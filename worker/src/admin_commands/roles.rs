//! `worker admins grant|revoke|list`: the admin role stored in the database, next to the
//! bootstrap list in `ADMIN_PATREON_IDS`.

use std::io::Write;

use clap::Subcommand;
use domain::auth::admins;

use super::{member, named, table};
use crate::WorkerCtx;

#[derive(Debug, Subcommand)]
pub enum AdminsCommand {
    /// Gives the member the admin role (stored in the database; effective at their next request).
    Grant {
        /// The member's Patreon user id.
        patreon_id: String,
    },
    /// Takes the admin role away; members listed in ADMIN_PATREON_IDS are refused (remove them
    /// from the list).
    Revoke {
        /// The member's Patreon user id.
        patreon_id: String,
    },
    /// Lists the admins from the database and from ADMIN_PATREON_IDS, marked which.
    List,
}

pub async fn grant(ctx: &WorkerCtx, patreon_id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let u = member(&ctx.db, patreon_id).await?;
    if admins::grant(&ctx.db, &u).await? {
        writeln!(out, "granted the admin role to {}", named(&u))?;
    } else {
        writeln!(
            out,
            "{} already has the admin role; nothing changed",
            named(&u)
        )?;
    }
    Ok(())
}

/// Refuses members listed in `ADMIN_PATREON_IDS` (the list would keep granting the role).
pub async fn revoke(ctx: &WorkerCtx, patreon_id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let u = member(&ctx.db, patreon_id).await?;
    if admins::revoke(&ctx.db, &u, &ctx.settings.admin_patreon_ids).await? {
        writeln!(out, "revoked the admin role of {}", named(&u))?;
    } else {
        writeln!(
            out,
            "{} has no admin role in the database; nothing changed",
            named(&u)
        )?;
    }
    Ok(())
}

pub async fn list(ctx: &WorkerCtx, out: &mut impl Write) -> anyhow::Result<()> {
    let admins = admins::list(&ctx.db, &ctx.settings.admin_patreon_ids).await?;
    if admins.is_empty() {
        writeln!(
            out,
            "no admins; `worker admins grant <patreon user id>` or ADMIN_PATREON_IDS adds one"
        )?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = admins
        .iter()
        .map(|a| {
            let name = match &a.user {
                Some(u) => u.full_name.clone().unwrap_or_default(),
                None => "(has not signed in yet)".to_owned(),
            };
            let source = match (a.in_database, a.in_config) {
                (true, true) => "database, ADMIN_PATREON_IDS",
                (true, false) => "database",
                (false, _) => "ADMIN_PATREON_IDS",
            };
            vec![a.patreon_id.to_string(), name, source.to_owned()]
        })
        .collect();
    table::write(out, &["PATREON ID", "NAME", "GRANTED BY"], &rows)?;
    Ok(())
}
