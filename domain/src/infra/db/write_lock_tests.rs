//! Writers on one SQLite file, in one process or two, queue for the write lock instead of
//! failing with `database is locked`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use test_support::{Backend, TestDb};
use tokio::task::JoinSet;

use super::{begin_write, connect};

const WRITERS_PER_PROCESS: usize = 8;
const INCREMENTS: i64 = 10;

async fn counter(db: &impl ConnectionTrait) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT n FROM counter",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// Reads the counter and writes it back one higher, in one write transaction: the shape of every
/// read-then-write use case (a sign-in reads the member, then stores them).
async fn increment(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let txn = begin_write(db).await?;
    let n = counter(&txn).await;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE counter SET n = ?",
        [(n + 1).into()],
    ))
    .await?;
    txn.commit().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_then_write_transactions_from_two_pools_all_commit_in_turn() {
    let file = TestDb::create(Backend::Sqlite).await;
    // Two pools on one file, as the api and the worker have.
    let pools = [
        connect(&file.url, 8).await.unwrap(),
        connect(&file.url, 8).await.unwrap(),
    ];
    pools[0]
        .execute_unprepared(
            "CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (0)",
        )
        .await
        .unwrap();

    let mut writers = JoinSet::new();
    for pool in &pools {
        for _ in 0..WRITERS_PER_PROCESS {
            let pool = pool.clone();
            writers.spawn(async move {
                for _ in 0..INCREMENTS {
                    increment(&pool).await?;
                }
                Ok::<_, sea_orm::DbErr>(())
            });
        }
    }
    let failures: Vec<_> = writers
        .join_all()
        .await
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();

    assert!(failures.is_empty(), "writers failed: {failures:?}");
    let every_increment = 2 * WRITERS_PER_PROCESS as i64 * INCREMENTS;
    assert_eq!(
        counter(&pools[0]).await,
        every_increment,
        "an increment was lost"
    );
}
