//! Domain logic shared by the api and the worker: configuration, storage use cases, the Patreon
//! client and the membership rule. No HTTP server and no queue wiring here.

pub mod auth;
mod error;
pub mod infra;
pub mod members;
pub mod patreon;
pub mod work;

pub use entity::ids::{JobRequestId, PatreonUserId, SweepId, UserId, WebhookEventId};
pub use error::{Error, Result};

#[cfg(test)]
mod test_servers {
    /// `REQUIRE_POSTGRES=1` / `REQUIRE_REDIS=1` turn the ignored tests into a failure.
    #[test]
    fn required_test_servers_are_configured() {
        test_support::assert_required_servers(cfg!(postgres_tests), cfg!(redis_tests));
    }
}
