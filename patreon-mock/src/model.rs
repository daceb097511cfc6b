//! Users, memberships and tiers held by the mock, with persona constructors.

use chrono::{DateTime, Datelike, Duration, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// The demo creator ("Cora Creator"); the creator token's `/identity` answers as this user.
pub const CREATOR_USER_ID: &str = "100000006";

/// A Patreon user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MockUser {
    /// Numeric string, as Patreon's user ids.
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    pub full_name: String,
    #[serde(default)]
    pub image_url: Option<String>,
    #[serde(default)]
    pub is_email_verified: bool,
    #[serde(default)]
    pub memberships: Vec<MockMembership>,
}

/// A user's membership to one campaign (a JSON:API `member`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MockMembership {
    /// UUID string, as Patreon's member ids.
    #[serde(default = "random_member_id")]
    pub member_id: String,
    pub campaign_id: String,
    #[serde(default)]
    pub patron_status: Option<String>,
    #[serde(default)]
    pub last_charge_status: Option<String>,
    #[serde(default)]
    pub last_charge_date: Option<String>,
    #[serde(default)]
    pub next_charge_date: Option<String>,
    #[serde(default)]
    pub currently_entitled_amount_cents: i64,
    #[serde(default)]
    pub will_pay_amount_cents: i64,
    #[serde(default)]
    pub pledge_relationship_start: Option<String>,
    #[serde(default)]
    pub pledge_cadence: Option<i64>,
    #[serde(default)]
    pub is_free_trial: bool,
    #[serde(default)]
    pub is_gifted: bool,
    #[serde(default)]
    pub tiers: Vec<MockTier>,
}

/// A campaign tier (a JSON:API `tier`); ids are numeric strings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MockTier {
    pub id: String,
    pub title: String,
    pub amount_cents: i64,
}

impl MockTier {
    pub fn new(id: &str, title: &str, amount_cents: i64) -> MockTier {
        MockTier {
            id: id.to_string(),
            title: title.to_string(),
            amount_cents,
        }
    }
    /// The automatic $0 "Free" tier of the configured campaign.
    pub fn free() -> MockTier {
        MockTier::new("10000001", "Free", 0)
    }
    /// The $5 "Supporter" tier of the configured campaign.
    pub fn supporter() -> MockTier {
        MockTier::new("10000002", "Supporter", 500)
    }
    /// A $3 tier of the other campaign.
    pub fn other_campaign_fan() -> MockTier {
        MockTier::new("20000001", "Fan", 300)
    }
}

fn random_member_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Deterministic UUID (v4 layout) for a user's membership to a campaign, so that
/// restarting the binary keeps member ids stable.
pub fn member_id_for(user_id: &str, campaign_id: &str) -> String {
    fn fnv(seed: u64, data: &[u8]) -> u64 {
        data.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
    let key = format!("{user_id}/{campaign_id}");
    let hi = fnv(0xcbf2_9ce4_8422_2325, key.as_bytes());
    let lo = fnv(0x8422_2325_cbf2_9ce4, key.as_bytes());
    let bytes = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// ISO 8601 with `+00:00`, as Patreon writes dates.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn days_ago(days: i64) -> String {
    iso(Utc::now() - Duration::days(days))
}

fn first_of_next_month() -> Option<String> {
    let now = Utc::now();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().map(iso)
}

impl MockMembership {
    fn base(user_id: &str, campaign_id: &str) -> MockMembership {
        MockMembership {
            member_id: member_id_for(user_id, campaign_id),
            campaign_id: campaign_id.to_string(),
            patron_status: None,
            last_charge_status: None,
            last_charge_date: None,
            next_charge_date: None,
            currently_entitled_amount_cents: 0,
            will_pay_amount_cents: 0,
            pledge_relationship_start: None,
            pledge_cadence: None,
            is_free_trial: false,
            is_gifted: false,
            tiers: Vec::new(),
        }
    }

    /// Paying monthly on `tier`, last charge Paid 5 days ago.
    pub fn active(user_id: &str, campaign_id: &str, tier: MockTier) -> MockMembership {
        MockMembership {
            patron_status: Some("active_patron".into()),
            last_charge_status: Some("Paid".into()),
            last_charge_date: Some(days_ago(5)),
            next_charge_date: first_of_next_month(),
            currently_entitled_amount_cents: tier.amount_cents,
            will_pay_amount_cents: tier.amount_cents,
            pledge_relationship_start: Some(days_ago(100)),
            pledge_cadence: Some(1),
            tiers: vec![tier],
            ..MockMembership::base(user_id, campaign_id)
        }
    }

    /// Last charge Declined 3 days ago; nothing entitled (as in real payloads).
    pub fn declined(user_id: &str, campaign_id: &str, tier: MockTier) -> MockMembership {
        MockMembership {
            patron_status: Some("declined_patron".into()),
            last_charge_status: Some("Declined".into()),
            last_charge_date: Some(days_ago(3)),
            next_charge_date: first_of_next_month(),
            currently_entitled_amount_cents: 0,
            will_pay_amount_cents: tier.amount_cents,
            pledge_relationship_start: Some(days_ago(200)),
            pledge_cadence: Some(1),
            ..MockMembership::base(user_id, campaign_id)
        }
    }

    /// Pledge deleted: `former_patron`, `Deleted`, 0 cents.
    pub fn former(user_id: &str, campaign_id: &str) -> MockMembership {
        MockMembership {
            patron_status: Some("former_patron".into()),
            last_charge_status: Some("Deleted".into()),
            last_charge_date: Some(days_ago(40)),
            ..MockMembership::base(user_id, campaign_id)
        }
    }

    /// Free member: `patron_status` null, on the $0 Free tier.
    pub fn free(user_id: &str, campaign_id: &str) -> MockMembership {
        MockMembership {
            tiers: vec![MockTier::free()],
            ..MockMembership::base(user_id, campaign_id)
        }
    }

    /// One line for the chooser page.
    pub fn describe(&self) -> String {
        let tiers: Vec<String> = self
            .tiers
            .iter()
            .map(|t| {
                format!(
                    "{} ${}.{:02}",
                    t.title,
                    t.amount_cents / 100,
                    t.amount_cents % 100
                )
            })
            .collect();
        let status = self.patron_status.as_deref().unwrap_or("free member");
        let charge = self
            .last_charge_status
            .as_deref()
            .unwrap_or("never charged");
        if tiers.is_empty() {
            format!("{status}, {charge}")
        } else {
            format!("{status}, {charge}, {}", tiers.join(" + "))
        }
    }
}

impl MockUser {
    /// A verified user without memberships.
    pub fn new(id: &str, full_name: &str) -> MockUser {
        let slug: String = full_name
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(".")
            .to_lowercase();
        let local = if slug.is_empty() {
            format!("user{id}")
        } else {
            slug
        };
        MockUser {
            id: id.to_string(),
            email: Some(format!("{local}@example.com")),
            full_name: full_name.to_string(),
            image_url: Some(format!("https://c8.patreon.com/3/200/{id}")),
            is_email_verified: true,
            memberships: Vec::new(),
        }
    }

    pub fn with_membership(mut self, m: MockMembership) -> MockUser {
        self.memberships.retain(|x| x.campaign_id != m.campaign_id);
        self.memberships.push(m);
        self
    }

    pub fn membership(&self, campaign_id: &str) -> Option<&MockMembership> {
        self.memberships
            .iter()
            .find(|m| m.campaign_id == campaign_id)
    }

    /// Active patron of `campaign_id` on the $5 Supporter tier.
    pub fn active_patron(id: &str, campaign_id: &str) -> MockUser {
        MockUser::new(id, &format!("Active Patron {id}")).with_membership(MockMembership::active(
            id,
            campaign_id,
            MockTier::supporter(),
        ))
    }
    /// Declined patron of `campaign_id` (charge declined 3 days ago).
    pub fn declined_patron(id: &str, campaign_id: &str) -> MockUser {
        MockUser::new(id, &format!("Declined Patron {id}")).with_membership(
            MockMembership::declined(id, campaign_id, MockTier::supporter()),
        )
    }
    /// Former patron of `campaign_id` (pledge Deleted).
    pub fn former_patron(id: &str, campaign_id: &str) -> MockUser {
        MockUser::new(id, &format!("Former Patron {id}"))
            .with_membership(MockMembership::former(id, campaign_id))
    }
    /// Free member of `campaign_id` (Free tier, `patron_status` null).
    pub fn free_member(id: &str, campaign_id: &str) -> MockUser {
        MockUser::new(id, &format!("Free Member {id}"))
            .with_membership(MockMembership::free(id, campaign_id))
    }
    /// Active patron of `other_campaign_id` only.
    pub fn patron_of_other_campaign(id: &str, other_campaign_id: &str) -> MockUser {
        let m = MockMembership::active(id, other_campaign_id, MockTier::other_campaign_fan());
        MockUser::new(id, &format!("Other Patron {id}")).with_membership(m)
    }
    /// A creator: no membership at all (not even to their own campaign).
    pub fn creator(id: &str) -> MockUser {
        MockUser::new(id, &format!("Creator {id}"))
    }

    pub(crate) fn renamed(mut self, full_name: &str, email: &str) -> MockUser {
        self.full_name = full_name.to_string();
        self.email = Some(email.to_string());
        self
    }

    /// One line for the chooser page, relative to the configured campaign.
    pub fn describe(&self, campaign_id: &str) -> String {
        match self.membership(campaign_id) {
            Some(m) => m.describe(),
            None if self.memberships.is_empty() => "no membership".to_string(),
            None => "member of another campaign only".to_string(),
        }
    }
}
