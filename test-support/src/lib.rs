//! Test fixtures shared by the crates' test binaries: a fresh database per test.
//!
//! PostgreSQL databases are created on `TEST_POSTGRES_URL` and dropped afterwards; SQLite ones are
//! temporary files. [`OwnPostgres`] is a whole server of a test's own, for tests that restart it.
//! [`on_both_backends!`] runs a test on both, [`redis_url`] says whether Redis tests run,
//! [`eventually`] waits with a deadline and [`jwt`] forges tokens. Dev-dependency only.

mod both_backends;
mod eventually;
pub mod jwt;
mod own_postgres;

pub use eventually::{eventually, eventually_matching, eventually_true};
pub use own_postgres::OwnPostgres;
use sea_orm::{ConnectionTrait, Database};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub url: String,
    backend: Backend,
    name: String,
    admin_url: Option<String>,
}

impl TestDb {
    /// A new, empty database (not migrated).
    pub async fn create(backend: Backend) -> TestDb {
        let name = format!("gate_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            Backend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                TestDb {
                    url: format!("sqlite://{}?mode=rwc", path.display()),
                    backend,
                    name,
                    admin_url: None,
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_url().expect("TEST_POSTGRES_URL");
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_POSTGRES_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let (base, _) = admin_url
                    .rsplit_once('/')
                    .expect("postgres URL with a database");
                TestDb {
                    url: format!("{base}/{name}"),
                    backend,
                    name,
                    admin_url: Some(admin_url),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match (&self.backend, &self.admin_url) {
            (Backend::Sqlite, _) => {
                let path = std::env::temp_dir().join(format!("{}.db", self.name));
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            (Backend::Postgres, Some(admin_url)) => {
                let (admin_url, name) = (admin_url.clone(), self.name.clone());
                // Dropping needs async I/O; do it on a small runtime of its own.
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    rt.block_on(async {
                        let admin = Database::connect(&admin_url).await.ok()?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await
                            .ok()?;
                        admin.close().await.ok()
                    })
                })
                .join();
            }
            _ => {}
        }
    }
}

/// `TEST_POSTGRES_URL`, when PostgreSQL tests are switched on.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// Whether PostgreSQL variants run. Prints a note when they are skipped, and panics when they are
/// required (`REQUIRE_POSTGRES`) but `TEST_POSTGRES_URL` is not set.
pub fn postgres_enabled() -> bool {
    if postgres_url().is_some() {
        return true;
    }
    assert!(
        std::env::var("REQUIRE_POSTGRES").is_err(),
        "REQUIRE_POSTGRES is set but TEST_POSTGRES_URL is not"
    );
    eprintln!("PostgreSQL variant skipped: set TEST_POSTGRES_URL to run it");
    false
}

/// `TEST_REDIS_URL`, or `None` (and a note) when Redis tests are off; panics when they are
/// required (`REQUIRE_REDIS`) but the variable is not set.
pub fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        assert!(
            std::env::var("REQUIRE_REDIS").is_err(),
            "REQUIRE_REDIS is set but TEST_REDIS_URL is not"
        );
        eprintln!("Redis test skipped: set TEST_REDIS_URL to run it");
    }
    url
}

/// Fails when `REQUIRE_POSTGRES` or `REQUIRE_REDIS` asks for a server this test binary was built
/// without (its tests that need it are then ignored rather than run). Each test binary calls it
/// from one test, with `cfg!(postgres_tests)` and `cfg!(redis_tests)`.
pub fn assert_required_servers(built_with_postgres: bool, built_with_redis: bool) {
    for (required, built, variable) in [
        ("REQUIRE_POSTGRES", built_with_postgres, "TEST_POSTGRES_URL"),
        ("REQUIRE_REDIS", built_with_redis, "TEST_REDIS_URL"),
    ] {
        assert!(
            std::env::var(required).is_err() || built,
            "{required} is set but {variable} is not: the tests that need it were ignored"
        );
    }
}
