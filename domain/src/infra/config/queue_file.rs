//! Where the embedded job queue lives when `QUEUE_SQLITE_URL` is not set.

/// Default file of the embedded queue, used when `REDIS_URL` is unset and the database is not a
/// SQLite file (beside which it would go, see [`default_queue_sqlite_url`]).
pub const DEFAULT_QUEUE_SQLITE_URL: &str = "sqlite://./data/queue.db?mode=rwc";

/// The embedded queue's default: `queue.db` in the directory of a SQLite database, so an api and
/// a worker given the same database share the queue whatever directory each was started from.
pub fn default_queue_sqlite_url(database_url: &str) -> String {
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        return DEFAULT_QUEUE_SQLITE_URL.to_owned();
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") {
        return DEFAULT_QUEUE_SQLITE_URL.to_owned();
    }
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    format!("sqlite://{}?mode=rwc", dir.join("queue.db").display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_queue_file_sits_beside_a_sqlite_database() {
        for (database, queue) in [
            (
                "sqlite:///srv/gate/gate.db?mode=rwc",
                "sqlite:///srv/gate/queue.db?mode=rwc",
            ),
            (
                "sqlite://./data/patreon-gate.db?mode=rwc",
                "sqlite://./data/queue.db?mode=rwc",
            ),
            ("sqlite:gate.db", "sqlite://./queue.db?mode=rwc"),
            ("postgres://db/gate", DEFAULT_QUEUE_SQLITE_URL),
            ("sqlite::memory:", DEFAULT_QUEUE_SQLITE_URL),
        ] {
            assert_eq!(default_queue_sqlite_url(database), queue, "{database}");
        }
    }
}
