//! Typed ids. Each is its column's value, so the compiler keeps them apart: a function taking a
//! [`UserId`] cannot be handed a [`PatreonUserId`] (an internal id was once confused with a
//! Patreon one), nor a [`SweepId`] or a [`WebhookEventId`]:
//!
//! ```compile_fail
//! fn recheck(_member: entity::UserId) {}
//! recheck(entity::PatreonUserId::from("12345"));
//! ```
//!
//! They serialize as the bare value (`#[serde(transparent)]`), so job payloads and JSON written
//! before they existed read back unchanged, and `Display` prints the bare value too: lease keys
//! and messages look as before. Log fields take the integer ids as numbers
//! (`user_id = i64::from(id)`: tracing's value types are a closed set), so JSON logs keep their
//! shape. Plain `i64`/`String` remain only at the edges (HTTP types, CLI arguments), converted
//! with `From`.

use std::fmt;

use sea_orm::{DbErr, DeriveValueType, TryFromU64};
use serde::{Deserialize, Serialize};

/// Declares an integer id: `Copy`, ordered, hashed, serialized and displayed as the `i64`.
macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// Parses the decimal form, as typed at the command line.
        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

/// Declares a text id: ordered, hashed, serialized and displayed as the string.
macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            DeriveValueType,
        )]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        /// So `Column::Id.eq(&id)` and `find_by_id(&id)` need no clone at the call site.
        impl From<&$name> for sea_orm::Value {
            fn from(id: &$name) -> Self {
                id.0.clone().into()
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        /// Read-only access as text (`&id` where a `&str` is taken); the other way needs `From`.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        /// Sets of ids can be searched with a plain `&str` (hashes as the inner string).
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

integer_id!(
    /// Our own id of a member (`users.id`), never sent to Patreon.
    UserId
);
integer_id!(
    /// A pass re-verifying every member (`sweeps.id`).
    SweepId
);
integer_id!(
    /// One recorded Patreon webhook delivery (`webhook_events.id`).
    WebhookEventId
);
text_id!(
    /// Patreon's id of a user (`users.patreon_id`): what Patreon's API and webhooks name.
    PatreonUserId
);
text_id!(
    /// A job someone waits for (`job_requests.id`), random and chosen by us.
    JobRequestId
);

/// A text primary key is never generated by the database; sea-orm still asks every key type
/// for this conversion, and `String` answers it the same way.
impl TryFromU64 for JobRequestId {
    fn try_from_u64(n: u64) -> Result<Self, DbErr> {
        Ok(Self(n.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialize_and_display_as_their_bare_value() {
        assert_eq!(serde_json::to_string(&UserId(42)).unwrap(), "42");
        assert_eq!(serde_json::from_str::<UserId>("42").unwrap(), UserId(42));
        let patreon = PatreonUserId::from("12345");
        assert_eq!(serde_json::to_string(&patreon).unwrap(), "\"12345\"");
        assert_eq!(UserId(7).to_string(), "7");
        assert_eq!(patreon.to_string(), "12345");
        assert_eq!(JobRequestId::from("abc").as_str(), "abc");
    }
}
