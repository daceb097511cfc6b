//! Demo personas and generated patrons for the binary, the demo and benchmarks.

use crate::model::{CREATOR_USER_ID, MockUser};

/// The campaign "Olga Other" supports in the demo seed (not the configured one).
pub const OTHER_CAMPAIGN_ID: &str = "7654320";
/// First id of the users generated for benchmarks (`MOCK_USERS`).
pub const GENERATED_FIRST_ID: u64 = 900_000_000;

/// The demo personas (ids 100000001..=100000006).
pub fn demo_users(campaign_id: &str) -> Vec<MockUser> {
    vec![
        MockUser::active_patron("100000001", campaign_id).renamed("Ada Active", "ada@example.com"),
        MockUser::declined_patron("100000002", campaign_id)
            .renamed("Dan Declined", "dan@example.com"),
        MockUser::former_patron("100000003", campaign_id)
            .renamed("Fran Former", "fran@example.com"),
        MockUser::free_member("100000004", campaign_id).renamed("Fred Free", "fred@example.com"),
        MockUser::patron_of_other_campaign("100000005", OTHER_CAMPAIGN_ID)
            .renamed("Olga Other", "olga@example.com"),
        MockUser::creator(CREATOR_USER_ID).renamed("Cora Creator", "cora@example.com"),
    ]
}

/// `count` active patrons of `campaign_id`, ids from `first_id` upwards.
pub fn generated_patrons(campaign_id: &str, first_id: u64, count: u64) -> Vec<MockUser> {
    (first_id..first_id.saturating_add(count))
        .map(|n| MockUser::active_patron(&n.to_string(), campaign_id))
        .collect()
}
