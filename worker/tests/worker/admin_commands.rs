//! `worker users|admins|dead-jobs|sessions`: what each command prints and what it changes,
//! on a real database.

use std::time::Duration;

use domain::{
    members::membership_checks::CheckTrigger,
    work::ledger::{Requested, requests},
};
use entity::{job_request, session, user};
use patreon_mock::MockUser;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use test_support::{Backend, postgres_enabled};
use worker::cli::{Cli, Command, OneOffCommand};

use crate::helpers::*;

/// Runs `worker <args>`; returns what it printed and how it ended.
async fn cli(w: &World, args: &[&str]) -> (String, anyhow::Result<()>) {
    let mut out = Vec::new();
    let result = match Cli::command_from(args) {
        Ok(Command::OneOff(OneOffCommand::Admin(command))) => {
            worker::admin_commands::run(&w.ctx, command, &mut out).await
        }
        Ok(other) => panic!("{args:?} is not an admin command: {other:?}"),
        Err(usage) => Err(usage.into()),
    };
    (String::from_utf8(out).unwrap(), result)
}

/// Runs `worker <args>` and expects it to succeed.
async fn ok(w: &World, args: &[&str]) -> String {
    let (out, result) = cli(w, args).await;
    if let Err(e) = result {
        panic!("worker {args:?} failed: {e:#}\n{out}");
    }
    out
}

/// Runs `worker <args>` and expects it to fail; returns the error message.
async fn fails(w: &World, args: &[&str]) -> String {
    let (out, result) = cli(w, args).await;
    match result {
        Ok(()) => panic!("worker {args:?} succeeded:\n{out}"),
        Err(e) => format!("{e:#}"),
    }
}

/// The Patreon ids in the first column of a table's rows (not its `N of M` footer).
fn listed_ids(table: &str) -> Vec<String> {
    table
        .lines()
        .filter(|l| !l.ends_with(" member(s)"))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|first| first.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect()
}

fn row<'a>(table: &'a str, patreon_id: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(patreon_id))
        .unwrap_or_else(|| panic!("no row for {patreon_id} in\n{table}"))
}

/// A `users list` row's ACCESS and ADMIN cells, read from the right (names have spaces; the
/// last check is `date time UTC`).
fn access_and_admin(line: &str) -> (&str, &str) {
    let cells: Vec<&str> = line.split_whitespace().collect();
    (cells[cells.len() - 5], cells[cells.len() - 1])
}

fn start_worker(w: &World) {
    let ctx = w.ctx.clone();
    tokio::spawn(worker::startup::run(
        ctx.clone(),
        ctx.queue,
        std::future::pending(),
    ));
}

async fn user_row(w: &World, patreon_id: &str) -> user::Model {
    domain::members::users::find_by_patreon_id(&w.ctx.db, &patreon_id.into())
        .await
        .unwrap()
        .unwrap()
}

async fn requests_of(w: &World, user_id: UserId) -> Vec<job_request::Model> {
    job_request::Entity::find()
        .filter(job_request::Column::UserId.eq(user_id))
        .all(&w.ctx.db)
        .await
        .unwrap()
}

async fn users_list_searches_and_filters_members(backend: Backend) {
    let w = World::new(backend).await;
    w.signed_in(MockUser::active_patron("3001", CAMPAIGN)).await;
    w.signed_in(MockUser::former_patron("3002", CAMPAIGN)).await;
    let dead_link = w.signed_in(MockUser::active_patron("3003", CAMPAIGN)).await;
    user::Entity::update_many()
        .col_expr(user::Column::NeedsRelogin, Expr::value(true))
        .filter(user::Column::Id.eq(dead_link))
        .exec(&w.ctx.db)
        .await
        .unwrap();

    let all = ok(&w, &["users", "list"]).await;
    assert!(all.starts_with("PATREON ID"), "{all}");
    assert_eq!(listed_ids(&all), ["3001", "3003", "3002"], "sorted by name");
    let ada = row(&all, "3001");
    assert!(ada.contains("Active Patron 3001") && ada.contains("active.patron.3001@example.com"));
    assert_eq!(access_and_admin(ada), ("yes", "no"), "{ada}");
    assert_eq!(access_and_admin(row(&all, "3002")), ("no", "no"));
    assert!(all.contains("3 of 3 member(s)"));

    let found = ok(&w, &["users", "list", "--search", "FORMER"]).await;
    assert_eq!(listed_ids(&found), ["3002"]);
    let by_email = ok(&w, &["users", "list", "--search", "patron.3003@"]).await;
    assert_eq!(listed_ids(&by_email), ["3003"]);
    let active = ok(&w, &["users", "list", "--status", "active"]).await;
    assert_eq!(listed_ids(&active), ["3001", "3003"]);
    let inactive = ok(&w, &["users", "list", "--status", "inactive"]).await;
    assert_eq!(listed_ids(&inactive), ["3002"]);
    let relogin = ok(&w, &["users", "list", "--status", "needs-relogin"]).await;
    assert_eq!(listed_ids(&relogin), ["3003"]);
    let first = ok(&w, &["users", "list", "--limit", "1"]).await;
    assert_eq!(listed_ids(&first), ["3001"]);
    assert!(first.contains("1 of 3 member(s)"));
    let none = ok(&w, &["users", "list", "--search", "nobody"]).await;
    assert_eq!(none.trim(), "no members match");

    let bad_status = fails(&w, &["users", "list", "--status", "paying"]).await;
    assert!(
        bad_status.contains("[possible values: active, inactive, needs-relogin]"),
        "{bad_status}"
    );
    let bad_limit = fails(&w, &["users", "list", "--limit", "0"]).await;
    assert!(
        bad_limit.contains("invalid value '0' for '--limit <N>'"),
        "{bad_limit}"
    );
    let no_search = fails(&w, &["users", "list", "--search"]).await;
    assert!(
        no_search.contains("a value is required for '--search <TEXT>'"),
        "{no_search}"
    );
    let unknown = fails(&w, &["users", "list", "--colour"]).await;
    assert!(
        unknown.contains("unexpected argument '--colour'"),
        "{unknown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_searches_and_filters_members_on_sqlite() {
    users_list_searches_and_filters_members(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_list_searches_and_filters_members_on_postgres() {
    if postgres_enabled() {
        users_list_searches_and_filters_members(Backend::Postgres).await;
    }
}

async fn a_recheck_is_queued_run_and_shown_in_the_history(backend: Backend) {
    let w = World::new(backend).await;
    let member = w.signed_in(MockUser::active_patron("3201", CAMPAIGN)).await;

    let queued = ok(&w, &["users", "recheck", "3201"]).await;
    let requests = requests_of(&w, member).await;
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        queued.trim(),
        format!("queued recheck {} of 3201 (Active Patron 3201)", request.id)
    );
    assert_eq!(
        (request.trigger.as_str(), request.status.as_str()),
        ("admin", "queued")
    );
    assert_eq!(
        request.requested_by, None,
        "an operator, not a member, asked"
    );

    // The open recheck is followed rather than doubled; a worker runs it. Patreon answers slowly,
    // so the recheck is still open (queued or running) when the second command looks, however
    // quickly the worker takes it.
    w.mock.set_faults(patreon_mock::Faults {
        identity: patreon_mock::EndpointFault {
            hang_ms: 1500,
            ..Default::default()
        },
        ..Default::default()
    });
    start_worker(&w);
    let waited = ok(&w, &["users", "recheck", "3201", "--wait"]).await;
    assert!(
        waited.contains(&format!(
            "recheck {} of 3201 (Active Patron 3201) is already",
            request.id
        )),
        "{waited}"
    );
    assert!(
        waited.contains(&format!("recheck {} succeeded: paying_member", request.id)),
        "{waited}"
    );
    assert_eq!(requests_of(&w, member).await.len(), 1);

    let shown = ok(&w, &["users", "show", "3201"]).await;
    assert!(
        shown.contains("name:            Active Patron 3201"),
        "{shown}"
    );
    assert!(shown.contains("paid access now: yes"), "{shown}");
    assert!(shown.contains("admin:           no"), "{shown}");
    let history: Vec<&str> = shown
        .lines()
        .skip_while(|l| !l.starts_with("WHEN"))
        .skip(1)
        .collect();
    assert_eq!(history.len(), 2, "{shown}");
    assert!(
        history[0].contains(" admin ") && history[0].contains(" verified "),
        "newest first: {shown}"
    );
    assert!(
        history[1].contains(" sign_in ") && history[1].contains("active_entitled"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_is_queued_run_and_shown_in_the_history_on_sqlite() {
    a_recheck_is_queued_run_and_shown_in_the_history(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_is_queued_run_and_shown_in_the_history_on_postgres() {
    if postgres_enabled() {
        a_recheck_is_queued_run_and_shown_in_the_history(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_recheck_no_worker_takes_gives_up_in_time() {
    let w = World::new(Backend::Sqlite).await;
    w.signed_in(MockUser::active_patron("3251", CAMPAIGN)).await;
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    let result =
        worker::admin_commands::recheck(&w.ctx, "3251", Some(Duration::from_millis(600)), &mut out)
            .await;
    let error = format!("{:#}", result.unwrap_err());
    assert!(
        error.contains("is still queued after 600ms") && error.contains("worker run"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("queued recheck ")
    );
}

async fn admins_are_granted_and_revoked_in_the_database(backend: Backend) {
    let w = World::new(backend).await;
    w.signed_in(MockUser::active_patron("3301", CAMPAIGN)).await;
    assert_eq!(
        ok(&w, &["admins", "list"]).await.lines().next().unwrap(),
        "no admins; `worker admins grant <patreon user id>` or ADMIN_PATREON_IDS adds one"
    );

    let granted = ok(&w, &["admins", "grant", "3301"]).await;
    assert_eq!(
        granted.trim(),
        "granted the admin role to 3301 (Active Patron 3301)"
    );
    assert!(user_row(&w, "3301").await.is_admin);
    let again = ok(&w, &["admins", "grant", "3301"]).await;
    assert!(again.contains("already has the admin role; nothing changed"));
    let admins = ok(&w, &["admins", "list"]).await;
    assert!(row(&admins, "3301").ends_with("database"), "{admins}");
    assert_eq!(
        access_and_admin(row(&ok(&w, &["users", "list"]).await, "3301")).1,
        "yes"
    );
    assert!(
        ok(&w, &["users", "show", "3301"])
            .await
            .contains("admin:           yes (database)")
    );

    let revoked = ok(&w, &["admins", "revoke", "3301"]).await;
    assert_eq!(
        revoked.trim(),
        "revoked the admin role of 3301 (Active Patron 3301)"
    );
    assert!(!user_row(&w, "3301").await.is_admin);
    let again = ok(&w, &["admins", "revoke", "3301"]).await;
    assert!(again.contains("has no admin role in the database; nothing changed"));
    assert!(ok(&w, &["admins", "list"]).await.starts_with("no admins"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_granted_and_revoked_in_the_database_on_sqlite() {
    admins_are_granted_and_revoked_in_the_database(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_granted_and_revoked_in_the_database_on_postgres() {
    if postgres_enabled() {
        admins_are_granted_and_revoked_in_the_database(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_listed_in_the_environment_cannot_be_revoked() {
    let w = World::with(Options {
        admin_patreon_ids: "3401,3499",
        ..Options::default()
    })
    .await;
    w.signed_in(MockUser::active_patron("3401", CAMPAIGN)).await;
    ok(&w, &["admins", "grant", "3401"]).await;

    let error = fails(&w, &["admins", "revoke", "3401"]).await;
    assert!(
        error.contains("3401 is an admin through ADMIN_PATREON_IDS"),
        "{error}"
    );
    assert!(user_row(&w, "3401").await.is_admin, "nothing changed");

    let admins = ok(&w, &["admins", "list"]).await;
    assert_eq!(listed_ids(&admins), ["3401", "3499"]);
    assert!(
        row(&admins, "3401").ends_with("database, ADMIN_PATREON_IDS"),
        "{admins}"
    );
    assert!(
        row(&admins, "3499").contains("(has not signed in yet)"),
        "{admins}"
    );
    assert!(
        row(&admins, "3499").ends_with("ADMIN_PATREON_IDS"),
        "{admins}"
    );
}

/// A recheck of `user_id` that gave up, as a dead job.
async fn dead_recheck(w: &World, user_id: UserId) -> JobRequestId {
    let requested = requests::request(
        &w.ctx.db,
        user_id,
        None,
        CheckTrigger::Admin,
        chrono::Duration::zero(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let Requested::New(request) = requested else {
        panic!("a new request")
    };
    let _ = requests::give_up(&w.ctx.db, &request.id, "unavailable")
        .await
        .unwrap();
    request.id
}

async fn dead_jobs_are_listed_and_retried(backend: Backend) {
    let w = World::new(backend).await;
    let first = w.signed_in(MockUser::active_patron("3501", CAMPAIGN)).await;
    let second = w.signed_in(MockUser::active_patron("3502", CAMPAIGN)).await;
    assert_eq!(ok(&w, &["dead-jobs", "list"]).await.trim(), "no dead jobs");
    let a = dead_recheck(&w, first).await;
    let b = dead_recheck(&w, second).await;

    let listed = ok(&w, &["dead-jobs", "list"]).await;
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("recheck:{a} ")))
        .expect(&listed);
    assert!(
        line.contains(" 3501 ") && line.contains(" unavailable "),
        "{line}"
    );
    assert!(listed.contains(&format!("recheck:{b} ")), "{listed}");

    let retried = ok(&w, &["dead-jobs", "retry", &format!("recheck:{a}")]).await;
    assert_eq!(retried.trim(), format!("queued recheck:{a} again"));
    let reopened = requests::find(&w.ctx.db, &a).await.unwrap().unwrap();
    assert_eq!((reopened.status.as_str(), reopened.attempts), ("queued", 0));
    let error = fails(&w, &["dead-jobs", "retry", &format!("recheck:{a}")]).await;
    assert!(error.contains("is not a dead job"), "{error}");
    assert!(
        fails(&w, &["dead-jobs", "retry", "sweep:x:1"])
            .await
            .contains("not a dead job ref")
    );

    assert_eq!(
        ok(&w, &["dead-jobs", "retry", "--all"]).await.trim(),
        "queued 1 of 1 dead job(s) again"
    );
    assert_eq!(ok(&w, &["dead-jobs", "list"]).await.trim(), "no dead jobs");
    start_worker(&w);
    for id in [a, b] {
        let done = w.finished_request(&id).await;
        assert_eq!(done.result.as_deref(), Some("paying_member"), "{done:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_and_retried_on_sqlite() {
    dead_jobs_are_listed_and_retried(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_jobs_are_listed_and_retried_on_postgres() {
    if postgres_enabled() {
        dead_jobs_are_listed_and_retried(Backend::Postgres).await;
    }
}

async fn live_sessions(w: &World, user_id: UserId) -> u64 {
    session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .count(&w.ctx.db)
        .await
        .unwrap()
}

async fn revoking_sessions_ends_every_sign_in_of_that_member_only(backend: Backend) {
    let w = World::new(backend).await;
    let member = w.signed_in(MockUser::active_patron("3601", CAMPAIGN)).await;
    let other = w.signed_in(MockUser::active_patron("3602", CAMPAIGN)).await;
    let now = chrono::Utc::now();
    for user_id in [member, member, other] {
        domain::auth::sessions::create(&w.ctx.db, user_id, chrono::Duration::hours(1), now)
            .await
            .unwrap();
    }

    let ended = ok(&w, &["sessions", "revoke", "3601"]).await;
    assert_eq!(
        ended.trim(),
        "ended 2 session(s) of 3601 (Active Patron 3601)"
    );
    assert_eq!(live_sessions(&w, member).await, 0);
    assert_eq!(live_sessions(&w, other).await, 1);
    let again = ok(&w, &["sessions", "revoke", "3601"]).await;
    assert!(again.starts_with("ended 0 session(s)"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_sessions_ends_every_sign_in_of_that_member_only_on_sqlite() {
    revoking_sessions_ends_every_sign_in_of_that_member_only(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_sessions_ends_every_sign_in_of_that_member_only_on_postgres() {
    if postgres_enabled() {
        revoking_sessions_ends_every_sign_in_of_that_member_only(Backend::Postgres).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_member_is_an_error_and_changes_nothing() {
    let w = World::new(Backend::Sqlite).await;
    let member = w.signed_in(MockUser::active_patron("3701", CAMPAIGN)).await;
    domain::auth::sessions::create(
        &w.ctx.db,
        member,
        chrono::Duration::hours(1),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let commands: [&[&str]; 5] = [
        &["users", "show"],
        &["users", "recheck"],
        &["admins", "grant"],
        &["admins", "revoke"],
        &["sessions", "revoke"],
    ];
    for command in commands {
        for (id, expected) in [
            ("9999", "no member with Patreon id 9999"),
            ("37o1", "\"37o1\" is not a Patreon user id"),
        ] {
            let args: Vec<&str> = command.iter().copied().chain([id]).collect();
            let (out, result) = cli(&w, &args).await;
            let error = format!("{:#}", result.expect_err("an unknown member is an error"));
            assert!(error.contains(expected), "{args:?}: {error}");
            assert!(out.is_empty(), "{args:?} printed {out}");
        }
    }
    assert!(requests_of(&w, member).await.is_empty());
    assert_eq!(live_sessions(&w, member).await, 1);
    assert!(!user_row(&w, "3701").await.is_admin);
    let usage = fails(&w, &["users"]).await;
    assert!(usage.contains("Usage: worker users <COMMAND>"), "{usage}");
    for command in ["list", "show", "recheck"] {
        assert!(usage.contains(&format!("\n  {command} ")), "{usage}");
    }

    // The binary says so on stderr and exits with status 1.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["admins", "grant", "9999"])
        .envs(w.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no member with Patreon id 9999"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert!(!user_row(&w, "3701").await.is_admin);
}
