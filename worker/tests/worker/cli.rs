//! `worker`'s command line: the README documents exactly the commands `worker help` declares,
//! and a mistyped command is refused by clap before anything runs.

use std::collections::BTreeSet;
use std::process::{Command, Output};

use entity::{sweep, user};
use patreon_mock::MockUser;
use sea_orm::{EntityTrait, PaginatorTrait};
use test_support::Backend;

use crate::helpers::*;

/// The worker binary with `args`, colours off so the output parses as plain text.
fn worker(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
    command
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE");
    command
}

/// What `worker help <command>` prints.
fn help(command: &[&str]) -> String {
    let args: Vec<&str> = ["help"].iter().chain(command).copied().collect();
    let output = worker(&args).output().unwrap();
    assert!(output.status.success(), "worker {args:?}: {output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The commands under `Commands:` in a help text, without clap's own `help`.
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        // Entries are indented by two spaces; a wrapped description by more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command `worker help` declares, as the words that name it: `purge`, `users list`.
fn declared_commands() -> BTreeSet<String> {
    let mut declared = BTreeSet::new();
    for command in listed_commands(&help(&[])) {
        let subcommands = listed_commands(&help(&[&command]));
        if subcommands.is_empty() {
            declared.insert(command.clone());
        }
        declared.extend(subcommands.iter().map(|sub| format!("{command} {sub}")));
    }
    declared
}

/// The commands named in the first column of the README's command table, in the same form:
/// the words after `worker` in each code span, up to the first argument.
fn documented_commands() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md at the workspace root");
    let rows = readme
        .lines()
        .skip_while(|l| *l != "| command | does |")
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut documented = BTreeSet::new();
    for row in rows {
        let first_column = row.trim_start_matches('|').split(" | ").next().unwrap();
        // Code spans are the odd pieces between backticks.
        for span in first_column.split('`').skip(1).step_by(2) {
            let Some(command) = span.strip_prefix("worker ") else {
                continue;
            };
            let words: Vec<&str> = command
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .take_while(|w| !w.starts_with('-'))
                .collect();
            documented.insert(words.join(" "));
        }
    }
    documented
}

#[test]
fn the_readme_table_lists_exactly_the_commands_worker_help_declares() {
    let declared = declared_commands();
    assert!(
        declared.contains("users list") && declared.contains("purge"),
        "{declared:?}"
    );
    let documented = documented_commands();
    let undocumented: Vec<_> = declared.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&declared).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "missing from README's command table: {undocumented:?}; \
         in the table but not in `worker help`: {unknown:?}"
    );
}

#[test]
fn help_comes_from_the_doc_comments() {
    let top = help(&[]);
    assert!(top.starts_with("patreon-gate's worker"), "{top}");
    assert!(top.contains("Usage: worker [COMMAND]"), "{top}");
    let long = String::from_utf8(
        worker(&["users", "list", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        long.contains("[possible values: active, inactive, needs-relogin]")
            || long.contains("needs-relogin:"),
        "{long}"
    );
    assert!(long.contains("[default: 50]"), "{long}");
}

fn run_on(w: &World, args: &[&str]) -> Output {
    worker(args)
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_mistyped_command_fails_with_clap_usage_and_changes_nothing() {
    let w = World::new(Backend::Sqlite).await;
    w.signed_in(MockUser::active_patron("3901", CAMPAIGN)).await;
    let mistyped: [(&[&str], &str); 6] = [
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        (&["admins", "grant"], "required arguments were not provided"),
        (
            &["admins", "grant", "3901", "--force"],
            "unexpected argument '--force'",
        ),
        (
            &["members", "erase", "3901", "--yes", "now"],
            "unexpected argument 'now'",
        ),
        (&["sweep"], "required arguments were not provided"),
        (
            &["dead-jobs", "retry"],
            "required arguments were not provided",
        ),
    ];
    for (args, expected) in mistyped {
        let output = run_on(&w, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "worker {args:?}: {stderr}");
        assert!(stderr.contains(expected), "worker {args:?}: {stderr}");
        assert!(
            stderr.contains("Usage: worker"),
            "worker {args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "worker {args:?}: {output:?}");
    }
    let member = domain::members::users::find_by_patreon_id(&w.ctx.db, &"3901".into())
        .await
        .unwrap()
        .expect("the member was not erased");
    assert!(!member.is_admin, "nor made an admin");
    assert_eq!(sweep::Entity::find().count(&w.ctx.db).await.unwrap(), 0);
    assert_eq!(user::Entity::find().count(&w.ctx.db).await.unwrap(), 1);
}
