//! The membership rule: who gets paid access, decided from Patreon's member data for our campaign.
//!
//! One pure function, [`decide`], used at sign-in, by the worker and by webhooks. It follows the
//! decision order of `docs/patreon-api.md` §5 ("What each status means for access"):
//!
//! 1. no member record for our campaign → no access;
//! 2. `last_charge_status == Fraud` → no access, and the member's sessions end;
//! 3. a refunded last charge → no access;
//! 4. `active_patron` and entitled → access; `active_patron`, not entitled, but allowed before →
//!    access for the grace window (at billing time entitlement drops to 0 until the charge settles);
//! 5. `declined_patron` → access within the grace window after the failed charge, then none;
//! 6. `former_patron` → access only while still entitled (paid through the period);
//! 7. never pledged (`null`) → no access.
//!
//! *Entitled* means a currently entitled tier that costs money, or an entitled amount of at least
//! the configured minimum. The automatic Free tier (0 cents) never counts.

use chrono::{DateTime, Duration, Utc};

/// Patreon's `patron_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatronStatus {
    Active,
    Declined,
    Former,
}

impl PatronStatus {
    /// `None` for `null` and for values Patreon may add later (treated as "never pledged").
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active_patron" => Some(Self::Active),
            "declined_patron" => Some(Self::Declined),
            "former_patron" => Some(Self::Former),
            _ => None,
        }
    }
}

/// Patreon's `last_charge_status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeStatus {
    Paid,
    Pending,
    Declined,
    Deleted,
    Refunded,
    RefundedByPatreon,
    PartiallyRefunded,
    Fraud,
    FreeTrial,
    Other(String),
}

impl ChargeStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "Paid" => Self::Paid,
            "Pending" => Self::Pending,
            "Declined" => Self::Declined,
            "Deleted" => Self::Deleted,
            "Refunded" => Self::Refunded,
            "Refunded by Patreon" => Self::RefundedByPatreon,
            "Partially Refunded" => Self::PartiallyRefunded,
            "Fraud" => Self::Fraud,
            "Free Trial" => Self::FreeTrial,
            other => Self::Other(other.to_owned()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntitledTier {
    pub id: String,
    pub title: Option<String>,
    pub amount_cents: i64,
}

/// What Patreon says about one member of our campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub patron_status: Option<PatronStatus>,
    pub last_charge_status: Option<ChargeStatus>,
    pub last_charge_date: Option<DateTime<Utc>>,
    pub next_charge_date: Option<DateTime<Utc>>,
    /// Patreon's `pledge_relationship_start`: a later one is a later pledge of the same member,
    /// which orders deliveries that carry no newer charge.
    pub pledge_started_at: Option<DateTime<Utc>>,
    pub entitled_amount_cents: i64,
    pub entitled_tiers: Vec<EntitledTier>,
    pub is_free_trial: bool,
}

impl MemberSnapshot {
    /// The most expensive entitled tier's title, shown to the member.
    pub fn tier_title(&self) -> Option<&str> {
        self.entitled_tiers
            .iter()
            .filter(|t| t.amount_cents > 0)
            .max_by_key(|t| t.amount_cents)
            .and_then(|t| t.title.as_deref())
    }
}

/// The knobs of the rule, from configuration.
#[derive(Clone, Debug)]
pub struct MembershipPolicy {
    /// How long access survives a failed charge or a billing-time entitlement drop.
    pub grace_period: Duration,
    /// Entitled cents that count as paying (the Free tier is 0).
    pub min_entitled_cents: i64,
    /// Whether members on a Patreon free trial of a paid tier get access.
    pub allow_free_trials: bool,
}

impl Default for MembershipPolicy {
    fn default() -> Self {
        Self {
            grace_period: Duration::days(7),
            min_entitled_cents: 1,
            allow_free_trials: true,
        }
    }
}

/// Why the rule decided what it did; recorded with every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessReason {
    NoMembership,
    Fraud,
    Refunded,
    FreeTrialNotAllowed,
    ActiveEntitled,
    BillingGrace,
    ActiveNotEntitled,
    DeclinedInGrace,
    DeclinedGraceOver,
    FormerPaidThrough,
    Former,
    NeverPledged,
}

impl AccessReason {
    /// Stable snake_case name, as stored in the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoMembership => "no_membership",
            Self::Fraud => "fraud",
            Self::Refunded => "refunded",
            Self::FreeTrialNotAllowed => "free_trial_not_allowed",
            Self::ActiveEntitled => "active_entitled",
            Self::BillingGrace => "billing_grace",
            Self::ActiveNotEntitled => "active_not_entitled",
            Self::DeclinedInGrace => "declined_in_grace",
            Self::DeclinedGraceOver => "declined_grace_over",
            Self::FormerPaidThrough => "former_paid_through",
            Self::Former => "former",
            Self::NeverPledged => "never_pledged",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessDecision {
    pub granted: bool,
    pub reason: AccessReason,
    /// The member's sign-in sessions must end now (fraud).
    pub end_sessions: bool,
}

impl AccessDecision {
    fn grant(reason: AccessReason) -> Self {
        Self {
            granted: true,
            reason,
            end_sessions: false,
        }
    }
    fn deny(reason: AccessReason) -> Self {
        Self {
            granted: false,
            reason,
            end_sessions: false,
        }
    }
}

/// Decides paid access. `previously_granted` is the stored outcome of the last check (false for a
/// first sign-in); it only matters for the billing-time grace of active patrons.
pub fn decide(
    member: Option<&MemberSnapshot>,
    previously_granted: bool,
    policy: &MembershipPolicy,
    now: DateTime<Utc>,
) -> AccessDecision {
    use AccessReason as R;
    let Some(m) = member else {
        return AccessDecision::deny(R::NoMembership);
    };
    match &m.last_charge_status {
        Some(ChargeStatus::Fraud) => {
            return AccessDecision {
                granted: false,
                reason: R::Fraud,
                end_sessions: true,
            };
        }
        Some(ChargeStatus::Refunded | ChargeStatus::RefundedByPatreon) => {
            return AccessDecision::deny(R::Refunded);
        }
        _ => {}
    }
    let on_trial = m.is_free_trial || m.last_charge_status == Some(ChargeStatus::FreeTrial);
    if on_trial && !policy.allow_free_trials {
        return AccessDecision::deny(R::FreeTrialNotAllowed);
    }
    let entitled = m.entitled_tiers.iter().any(|t| t.amount_cents > 0)
        || m.entitled_amount_cents >= policy.min_entitled_cents.max(1);
    let within_grace = |anchor: Option<DateTime<Utc>>| {
        anchor.is_some_and(|at| at <= now + Duration::minutes(5) && now < at + policy.grace_period)
    };
    match m.patron_status {
        Some(PatronStatus::Active) if entitled => AccessDecision::grant(R::ActiveEntitled),
        Some(PatronStatus::Active) => {
            // At billing time entitlement reads 0 until the charge settles: the anchor is the
            // billing moment once it has passed, else the last charge.
            let billing_moment = m.next_charge_date.filter(|at| *at <= now);
            let anchor = billing_moment.max(m.last_charge_date);
            if previously_granted && within_grace(anchor) {
                AccessDecision::grant(R::BillingGrace)
            } else {
                AccessDecision::deny(R::ActiveNotEntitled)
            }
        }
        Some(PatronStatus::Declined) if within_grace(m.last_charge_date) => {
            AccessDecision::grant(R::DeclinedInGrace)
        }
        Some(PatronStatus::Declined) => AccessDecision::deny(R::DeclinedGraceOver),
        Some(PatronStatus::Former) if entitled => AccessDecision::grant(R::FormerPaidThrough),
        Some(PatronStatus::Former) => AccessDecision::deny(R::Former),
        None => AccessDecision::deny(R::NeverPledged),
    }
}

#[cfg(test)]
mod tests;
