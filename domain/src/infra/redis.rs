//! The Redis connection shared by a process (`REDIS_URL`): rate limits today, the job queue
//! with the worker. Reconnects on its own; commands time out quickly so callers can fall back.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

pub use redis::RedisError;

/// Connects (failing fast if Redis does not answer now) and keeps reconnecting afterwards.
pub async fn connect(url: &SecretString) -> Result<ConnectionManager, RedisError> {
    let client = redis::Client::open(url.expose_secret())?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_with_config(client, config).await
}

/// The process's Redis connection when `REDIS_URL` is set.
pub async fn connect_if_configured(
    url: Option<&SecretString>,
) -> Result<Option<ConnectionManager>, RedisError> {
    match url {
        Some(url) => connect(url).await.map(Some),
        None => Ok(None),
    }
}

/// `PING`, for readiness checks.
pub async fn ping(conn: &ConnectionManager) -> Result<(), RedisError> {
    let mut conn = conn.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())
}
