//! `worker import-profiles`: members from the old app's profile table into `users` (see
//! `domain::members::profile_import` for what happens to them).

use std::io::Write;

use anyhow::Context;
use domain::members::profile_import::{self, ProfileColumns, ProfileSource};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};

pub const USAGE: &str = "usage: worker import-profiles --from <DATABASE_URL> \
     [--table user_profiles] [--id-column id] [--email-column email] [--name-column name] \
     [--avatar-column avatar_url] [--tier-column membership_tier] \
     [--paid-column is_paid_member|is_paid] [--team-column is_team_member|is_team] [--dry-run] \
     (without --paid-column or --team-column, whichever of the two spellings the table has)";

#[derive(Debug, PartialEq, Eq)]
struct ImportArgs {
    from: String,
    table: String,
    columns: ProfileColumns,
    dry_run: bool,
}

fn parse_args(args: &[String]) -> anyhow::Result<ImportArgs> {
    let mut from = None;
    let mut table = "user_profiles".to_owned();
    let mut columns = ProfileColumns::default();
    let mut dry_run = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--dry-run" {
            dry_run = true;
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let slot = match flag {
            "--from" => from.insert(String::new()),
            "--table" => &mut table,
            "--id-column" => &mut columns.id,
            "--email-column" => &mut columns.email,
            "--name-column" => &mut columns.name,
            "--avatar-column" => &mut columns.avatar,
            "--tier-column" => &mut columns.tier,
            "--paid-column" => columns.paid.insert(String::new()),
            "--team-column" => columns.team.insert(String::new()),
            _ => anyhow::bail!("unknown argument {arg:?}; {USAGE}"),
        };
        *slot = match inline {
            Some(value) => value,
            None => args
                .next()
                .with_context(|| format!("{flag} needs a value; {USAGE}"))?
                .clone(),
        };
    }
    let from = from
        .filter(|f| !f.is_empty())
        .with_context(|| format!("--from is required; {USAGE}"))?;
    Ok(ImportArgs {
        from,
        table,
        columns,
        dry_run,
    })
}

/// Runs the import described by `args` into `target`, drawing progress on stderr and writing
/// the report to `out`.
pub async fn run(
    target: &DatabaseConnection,
    args: &[String],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let args = parse_args(args)?;
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
    let mut source = ProfileSource::open(source_db, &args.table, args.columns).await?;
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

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_take_their_value_after_a_space_or_an_equals_sign() {
        let parsed = parse_args(&args(&[
            "--from",
            "postgres://old/db",
            "--table=profiles",
            "--paid-column",
            "paid",
            "--dry-run",
        ]))
        .unwrap();
        assert_eq!(parsed.from, "postgres://old/db");
        assert_eq!(parsed.table, "profiles");
        assert_eq!(parsed.columns.paid.as_deref(), Some("paid"));
        assert_eq!(
            parsed.columns.team, None,
            "not named: detected in the table"
        );
        assert_eq!(parsed.columns.email, "email");
        assert!(parsed.dry_run);
    }

    #[test]
    fn a_missing_source_or_an_unknown_flag_is_refused() {
        let err = parse_args(&args(&["--dry-run"])).unwrap_err();
        assert!(err.to_string().contains("--from is required"), "{err}");
        let err = parse_args(&args(&["--from", "x", "--colour", "red"])).unwrap_err();
        assert!(err.to_string().contains("unknown argument"), "{err}");
        let err = parse_args(&args(&["--from", "x", "--table"])).unwrap_err();
        assert!(err.to_string().contains("--table needs a value"), "{err}");
    }
}
