//! `worker import-profiles`: members from the old app's profile table into `users` (see
//! `domain::members::profile_import` for what happens to them).

use std::io::Write;

use anyhow::Context;
use clap::{Args, builder::NonEmptyStringValueParser};
use domain::members::profile_import::{self, ProfileColumns, ProfileSource};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

/// Where the profiles are and which columns hold what; the target is DATABASE_URL.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The old app's database (postgres://… or sqlite://…); only read.
    #[arg(long, value_name = "DATABASE_URL", value_parser = NonEmptyStringValueParser::new())]
    from: String,
    /// The table holding the profiles.
    #[arg(long, value_name = "TABLE", default_value = "user_profiles")]
    table: String,
    /// The column holding the member's Patreon user id.
    #[arg(long, value_name = "COLUMN", default_value_t = ProfileColumns::default().id)]
    id_column: String,
    /// The column holding the email.
    #[arg(long, value_name = "COLUMN", default_value_t = ProfileColumns::default().email)]
    email_column: String,
    /// The column holding the name.
    #[arg(long, value_name = "COLUMN", default_value_t = ProfileColumns::default().name)]
    name_column: String,
    /// The column holding the avatar URL.
    #[arg(long, value_name = "COLUMN", default_value_t = ProfileColumns::default().avatar)]
    avatar_column: String,
    /// The column holding the tier title.
    #[arg(long, value_name = "COLUMN", default_value_t = ProfileColumns::default().tier)]
    tier_column: String,
    /// The paid flag's column [default: is_paid_member or is_paid, whichever the table has].
    #[arg(long, value_name = "COLUMN")]
    paid_column: Option<String>,
    /// The team flag's column [default: is_team_member or is_team, whichever the table has].
    #[arg(long, value_name = "COLUMN")]
    team_column: Option<String>,
    /// Reads and reports everything, writes nothing.
    #[arg(long)]
    dry_run: bool,
}

impl ImportArgs {
    fn columns(&self) -> ProfileColumns {
        ProfileColumns {
            id: self.id_column.clone(),
            email: self.email_column.clone(),
            name: self.name_column.clone(),
            avatar: self.avatar_column.clone(),
            tier: self.tier_column.clone(),
            paid: self.paid_column.clone(),
            team: self.team_column.clone(),
        }
    }
}

/// Runs the import described by `args` into `target`, drawing progress on stderr and writing
/// the report to `out`.
pub async fn run(
    target: &DatabaseConnection,
    args: ImportArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    profile_import::check_target(target).await?;
    let mut options = ConnectOptions::new(args.from.clone());
    // Statement logging would print bound values (members' emails); two connections suffice.
    options.max_connections(2).sqlx_logging(false);
    // The URL may carry a password: it is never part of the message.
    let source_db = Database::connect(options)
        .await
        .context("cannot open the source database given with --from")?;
    let imported = import(&source_db, target, args).await;
    source_db.close().await.ok();
    let report = imported?;
    write!(out, "{report}")?;
    Ok(())
}

async fn import(
    source_db: &DatabaseConnection,
    target: &DatabaseConnection,
    args: ImportArgs,
) -> anyhow::Result<profile_import::ImportReport> {
    let mut source = ProfileSource::open(source_db, &args.table, args.columns()).await?;
    let bar = indicatif::ProgressBar::new(source.count_rows().await?);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} profiles [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = profile_import::import_profiles(
        &mut source,
        target,
        args.dry_run,
        profile_import::DEFAULT_BATCH_SIZE,
        chrono::Utc::now(),
        |rows| bar.set_position(rows),
    )
    .await;
    bar.finish_and_clear();
    Ok(report?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command, OneOffCommand};

    fn parse(args: &[&str]) -> Result<ImportArgs, clap::Error> {
        let args = ["import-profiles"].iter().chain(args);
        match Cli::command_from(args)? {
            Command::OneOff(OneOffCommand::ImportProfiles(args)) => Ok(args),
            other => panic!("not an import: {other:?}"),
        }
    }

    #[test]
    fn flags_take_their_value_after_a_space_or_an_equals_sign() {
        let parsed = parse(&[
            "--from",
            "postgres://old/db",
            "--table=profiles",
            "--paid-column",
            "paid",
            "--dry-run",
        ])
        .unwrap();
        assert_eq!(parsed.from, "postgres://old/db");
        assert_eq!(parsed.table, "profiles");
        let columns = parsed.columns();
        assert_eq!(columns.paid.as_deref(), Some("paid"));
        assert_eq!(columns.team, None, "not named: detected in the table");
        assert_eq!(
            ProfileColumns {
                paid: None,
                ..columns
            },
            ProfileColumns::default(),
            "the others keep the old app's names"
        );
        assert!(parsed.dry_run);
    }

    #[test]
    fn a_missing_source_or_an_unknown_flag_is_refused() {
        let err = parse(&["--dry-run"]).unwrap_err().to_string();
        assert!(err.contains("required") && err.contains("--from"), "{err}");
        let err = parse(&["--from", ""]).unwrap_err().to_string();
        assert!(err.contains("--from"), "{err}");
        let err = parse(&["--from", "x", "--colour", "red"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unexpected argument '--colour'"), "{err}");
        let err = parse(&["--from", "x", "--table"]).unwrap_err().to_string();
        assert!(err.contains("a value is required for '--table"), "{err}");
    }
}
