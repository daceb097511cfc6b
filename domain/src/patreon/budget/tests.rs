//! The budget's promises: never more than the limit in any window, whether counted in this
//! process, in Redis or in the database, and a 429's pause holding every process sharing it.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use test_support::{Backend, TestDb, postgres_enabled};

use super::*;

/// Every window of `window` holds at most `limit` of the `times`.
fn assert_within(times: &[Duration], limit: usize, window: Duration) {
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().filter(|u| **u < *t + window).count();
        assert!(
            in_window <= limit,
            "{in_window} calls within {window:?} from call {i}"
        );
    }
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test]
async fn processes_sharing_redis_share_one_budget() {
    let Some(url) = test_support::redis_url() else {
        return;
    };
    let key = format!(
        "gate-test-{}:patreon:client-budget",
        crate::infra::secrets::random_id()
    );
    let window = Duration::from_millis(300);
    let conn = || async {
        crate::infra::redis::connect(&SecretString::from(url.clone()))
            .await
            .unwrap()
    };
    let quota = Quota::new(4, window);
    let roomy = Quota::new(1000, window);
    let a = PatreonBudget::shared(quota, roomy, conn().await, key.clone());
    let b = PatreonBudget::shared(quota, roomy, conn().await, key);
    let started = Instant::now();
    let mut times = Vec::new();
    for i in 0..12 {
        if i % 2 == 0 {
            a.acquire(None).await
        } else {
            b.acquire(None).await
        }
        times.push(started.elapsed());
    }
    // Redis's clock and ours differ by microseconds; allow 20 ms of slack at the edges.
    assert_within(&times, 4, window - Duration::from_millis(20));
}

#[tokio::test]
async fn never_more_than_the_limit_in_any_window() {
    let window = Duration::from_millis(200);
    let budget = PatreonBudget::local(Quota::new(5, window), Quota::new(1000, window));
    let started = Instant::now();
    let mut times = Vec::new();
    for _ in 0..12 {
        budget.acquire(None).await;
        times.push(started.elapsed());
    }
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..]
            .iter()
            .filter(|u| **u < *t + Duration::from_millis(200))
            .count();
        assert!(
            in_window <= 5,
            "{in_window} calls within 200 ms from call {i}"
        );
    }
}

#[tokio::test]
async fn one_busy_token_waits_without_slowing_the_others() {
    let window = Duration::from_millis(300);
    let budget = PatreonBudget::local(Quota::new(1000, window), Quota::new(3, window));
    let busy = SecretString::from("token-of-a-busy-member");
    let other = SecretString::from("token-of-another-member");
    let started = Instant::now();
    let mut busy_times = Vec::new();
    for _ in 0..7 {
        budget.acquire(Some(&busy)).await;
        busy_times.push(started.elapsed());
    }
    assert_within(&busy_times, 3, window);
    let before = Instant::now();
    for _ in 0..3 {
        budget.acquire(Some(&other)).await;
    }
    assert!(
        before.elapsed() < Duration::from_millis(50),
        "another token has its own quota"
    );
}

#[test]
fn tokens_are_named_by_a_hash_not_their_value() {
    let token = SecretString::from("secret-access-token-value");
    let name = fingerprint(&token);
    assert_eq!(name.len(), 24);
    assert!(!name.contains("secret"));
    assert_eq!(
        name,
        fingerprint(&SecretString::from("secret-access-token-value"))
    );
}

/// Two processes' budgets on one database (`backend`), each with its own pool.
async fn two_processes_on_one_database(
    backend: Backend,
    client: Quota,
) -> (PatreonBudget, PatreonBudget, TestDb) {
    let test_db = TestDb::create(backend).await;
    let first = crate::infra::db::connect(&test_db.url, 5).await.unwrap();
    crate::infra::db::migrate(&first).await.unwrap();
    let second = crate::infra::db::connect(&test_db.url, 5).await.unwrap();
    let roomy = Quota::new(1000, client.window);
    (
        PatreonBudget::database(client, roomy, first),
        PatreonBudget::database(client, roomy, second),
        test_db,
    )
}

async fn processes_sharing_a_database_share_one_budget(backend: Backend) {
    let window = Duration::from_millis(1_000);
    let (a, b, _db) = two_processes_on_one_database(backend, Quota::new(4, window)).await;
    let started = Instant::now();
    let mut times = Vec::new();
    for i in 0..12 {
        if i % 2 == 0 {
            a.acquire(None).await
        } else {
            b.acquire(None).await
        }
        times.push(started.elapsed());
    }
    // A call is stamped by the database before its commit returns to us, and a loaded machine
    // can take a while for that: allow 150 ms of slack at the edges.
    assert_within(&times, 4, window - Duration::from_millis(150));
}

#[tokio::test]
async fn processes_sharing_a_sqlite_file_share_one_budget() {
    processes_sharing_a_database_share_one_budget(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test]
async fn processes_sharing_postgres_share_one_budget() {
    if postgres_enabled() {
        processes_sharing_a_database_share_one_budget(Backend::Postgres).await;
    }
}

async fn a_pause_holds_every_process_sharing_the_database(backend: Backend) {
    let window = Duration::from_millis(2_000);
    let (a, b, _db) = two_processes_on_one_database(backend, Quota::new(100, window)).await;
    let started = Instant::now();
    a.pause(Duration::from_millis(400)).await;
    b.acquire(None).await;
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "the other process waited out the pause: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_pause_holds_every_process_sharing_a_sqlite_file() {
    a_pause_holds_every_process_sharing_the_database(Backend::Sqlite).await;
}

#[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
#[tokio::test]
async fn a_pause_holds_every_process_sharing_postgres() {
    if postgres_enabled() {
        a_pause_holds_every_process_sharing_the_database(Backend::Postgres).await;
    }
}

#[cfg_attr(not(redis_tests), ignore = "needs TEST_REDIS_URL")]
#[tokio::test]
async fn a_pause_holds_every_process_sharing_redis() {
    let Some(url) = test_support::redis_url() else {
        return;
    };
    let key = format!(
        "gate-test-{}:patreon:budget",
        crate::infra::secrets::random_id()
    );
    let url = SecretString::from(url);
    let quota = Quota::new(100, Duration::from_secs(2));
    let a = PatreonBudget::shared(
        quota,
        quota,
        crate::infra::redis::connect(&url).await.unwrap(),
        key.clone(),
    );
    let b = PatreonBudget::shared(
        quota,
        quota,
        crate::infra::redis::connect(&url).await.unwrap(),
        key,
    );
    let started = Instant::now();
    a.pause(Duration::from_millis(400)).await;
    b.acquire(None).await;
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "the other process waited out the pause: {:?}",
        started.elapsed()
    );
}
