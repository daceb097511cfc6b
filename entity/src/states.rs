//! The states, outcomes and triggers stored in text columns, as Rust enums. Each variant is
//! stored as the same string the column always held, so no schema change was needed; a row
//! holding any other string fails to load (an error, never a silent default). What each state
//! means and which transitions exist is documented in `domain::work::ledger`.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// `job_requests.status`: where a recheck someone waits for stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RequestStatus {
    /// Recorded and pushed (or being pushed again); no attempt is running.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// An attempt started and has not ended.
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Given up: a permanent error, or the last attempt failed. An admin may retry it.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl RequestStatus {
    /// The states of a request that is still owed (at most one per member and kind).
    pub const OPEN: [Self; 2] = [Self::Queued, Self::Running];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// `job_requests.kind`: what a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RequestKind {
    #[sea_orm(string_value = "verify_membership")]
    VerifyMembership,
}

impl RequestKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyMembership => "verify_membership",
        }
    }
}

/// Why a membership check ran (`membership_checks.trigger`, `job_requests.trigger`). Travels in
/// job payloads under the same snake_case names.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum CheckTrigger {
    #[sea_orm(string_value = "sign_in")]
    SignIn,
    #[sea_orm(string_value = "sweep")]
    Sweep,
    #[sea_orm(string_value = "webhook")]
    Webhook,
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "member")]
    Member,
}

impl CheckTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Sweep => "sweep",
            Self::Webhook => "webhook",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

/// What a check came to (`membership_checks.outcome`, `sweep_items.outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum CheckOutcome {
    /// Patreon answered and nothing changed.
    #[sea_orm(string_value = "verified")]
    Verified,
    /// Patreon answered and access or status changed.
    #[sea_orm(string_value = "changed")]
    Changed,
    /// Patreon could not be asked or refused; the stored status was kept.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Not checked (e.g. the member must sign in again first).
    #[sea_orm(string_value = "skipped")]
    Skipped,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Changed => "changed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// `sweeps.trigger`: who started a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum SweepTrigger {
    /// A tick of `VERIFY_SCHEDULE`.
    #[sea_orm(string_value = "schedule")]
    Schedule,
    /// An operator: `worker sweep --now`.
    #[sea_orm(string_value = "manual")]
    Manual,
    /// An admin: `POST /api/admin/sweeps`.
    #[sea_orm(string_value = "admin")]
    Admin,
}

impl SweepTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
            Self::Admin => "admin",
        }
    }
}

/// `sweep_items.status`: one member's check within a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ItemStatus {
    /// Owed, not pushed yet.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Pushed (at `pushed_at`), not finished.
    #[sea_orm(string_value = "queued")]
    Queued,
    /// Finished, with an outcome.
    #[sea_orm(string_value = "done")]
    Done,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::Done => "done",
        }
    }
}

/// `webhook_events.status`: what became of a recorded delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DeliveryStatus {
    /// To be applied.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// The member's state follows it.
    #[sea_orm(string_value = "applied")]
    Applied,
    /// A member of another campaign: recorded, never applied.
    #[sea_orm(string_value = "ignored")]
    Ignored,
    /// No such member yet: kept for their first sign-in.
    #[sea_orm(string_value = "waiting")]
    Waiting,
    /// Older than the stored state: changed nothing.
    #[sea_orm(string_value = "stale")]
    Stale,
    /// Could not be applied (unparsable).
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applied => "applied",
            Self::Ignored => "ignored",
            Self::Waiting => "waiting",
            Self::Stale => "stale",
            Self::Failed => "failed",
        }
    }
}

/// `webhook_events.outcome`: why a delivery ended in its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum DeliveryOutcome {
    /// Applied, and the member's access or status changed.
    #[sea_orm(string_value = "changed")]
    Changed,
    /// Applied, and nothing changed.
    #[sea_orm(string_value = "unchanged")]
    Unchanged,
    #[sea_orm(string_value = "other_campaign")]
    OtherCampaign,
    #[sea_orm(string_value = "unknown_user")]
    UnknownUser,
    #[sea_orm(string_value = "older_than_stored")]
    OlderThanStored,
    #[sea_orm(string_value = "malformed")]
    Malformed,
}

impl DeliveryOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
            Self::OtherCampaign => "other_campaign",
            Self::UnknownUser => "unknown_user",
            Self::OlderThanStored => "older_than_stored",
            Self::Malformed => "malformed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    /// `as_str` (for logs, labels and the API) must say exactly what the column holds.
    #[test]
    fn every_state_is_stored_as_the_string_it_is_shown_as() {
        fn same<T: ActiveEnum<Value = String> + Iterable + Copy>(as_str: fn(T) -> &'static str) {
            for v in T::iter() {
                assert_eq!(v.to_value(), as_str(v));
            }
        }
        same(RequestStatus::as_str);
        same(RequestKind::as_str);
        same(CheckTrigger::as_str);
        same(CheckOutcome::as_str);
        same(SweepTrigger::as_str);
        same(ItemStatus::as_str);
        same(DeliveryStatus::as_str);
        same(DeliveryOutcome::as_str);
    }

    #[test]
    fn an_unknown_string_is_an_error_not_a_default() {
        assert!(CheckTrigger::try_from_value(&"robot".to_owned()).is_err());
        assert!(RequestStatus::try_from_value(&"paused".to_owned()).is_err());
    }

    /// Jobs queued by the previous version carry the trigger as a snake_case string.
    #[test]
    fn check_triggers_travel_under_their_old_names() {
        for t in CheckTrigger::iter() {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
        }
    }
}
