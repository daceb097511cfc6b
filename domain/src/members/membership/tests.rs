use super::*;

const PATRON_STATUSES: [Option<&str>; 4] = [
    Some("active_patron"),
    Some("declined_patron"),
    Some("former_patron"),
    None,
];

const CHARGE_STATUSES: [Option<&str>; 11] = [
    Some("Paid"),
    Some("Pending"),
    Some("Declined"),
    Some("Deleted"),
    Some("Refunded"),
    Some("Refunded by Patreon"),
    Some("Partially Refunded"),
    Some("Fraud"),
    Some("Other"),
    Some("Free Trial"),
    None,
];

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-10T12:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap()
}

fn tier(amount_cents: i64) -> EntitledTier {
    EntitledTier {
        id: format!("tier-{amount_cents}"),
        title: Some(if amount_cents == 0 {
            "Free".into()
        } else {
            format!("${}", amount_cents / 100)
        }),
        amount_cents,
    }
}

fn member(patron: Option<&str>, charge: Option<&str>, entitled: bool) -> MemberSnapshot {
    MemberSnapshot {
        member_id: "m-1".into(),
        patron_status: patron.and_then(PatronStatus::parse),
        last_charge_status: charge.map(ChargeStatus::parse),
        last_charge_date: Some(now() - Duration::days(2)),
        next_charge_date: Some(now() + Duration::days(28)),
        entitled_amount_cents: if entitled { 500 } else { 0 },
        entitled_tiers: vec![if entitled { tier(500) } else { tier(0) }],
        is_free_trial: charge == Some("Free Trial"),
        pledge_started_at: None,
    }
}

/// Expected access for a member charged two days ago, by (patron_status, last_charge_status),
/// written out from the rule in docs/patreon-api.md §5 rather than derived from the code.
fn expected(patron: Option<&str>, charge: Option<&str>, entitled: bool) -> bool {
    match charge {
        Some("Fraud" | "Refunded" | "Refunded by Patreon") => false,
        _ => match patron {
            Some("active_patron") => entitled,
            Some("declined_patron") => true, // failed charge 2 days ago: inside the 7-day grace
            Some("former_patron") => entitled, // paid through the period
            _ => false,
        },
    }
}

#[test]
fn every_patron_status_and_charge_status_pair_follows_the_rule() {
    let policy = MembershipPolicy::default();
    let mut checked = 0;
    for patron in PATRON_STATUSES {
        for charge in CHARGE_STATUSES {
            for entitled in [true, false] {
                let m = member(patron, charge, entitled);
                let got = decide(Some(&m), false, &policy, now());
                assert_eq!(
                    got.granted,
                    expected(patron, charge, entitled),
                    "patron_status={patron:?} last_charge_status={charge:?} entitled={entitled} → {got:?}"
                );
                assert_eq!(got.end_sessions, charge == Some("Fraud"));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4 * 11 * 2);
}

#[test]
fn no_membership_in_our_campaign_means_no_access() {
    let d = decide(None, true, &MembershipPolicy::default(), now());
    assert_eq!(d, AccessDecision::deny(AccessReason::NoMembership));
}

#[test]
fn the_free_tier_alone_never_grants_access() {
    let mut m = member(Some("active_patron"), Some("Paid"), false);
    m.entitled_tiers = vec![tier(0)];
    m.entitled_amount_cents = 0;
    assert!(!decide(Some(&m), false, &MembershipPolicy::default(), now()).granted);
}

#[test]
fn a_paid_tier_grants_access_even_when_the_amount_is_missing() {
    let mut m = member(Some("active_patron"), Some("Paid"), true);
    m.entitled_amount_cents = 0;
    assert_eq!(
        decide(Some(&m), false, &MembershipPolicy::default(), now()).reason,
        AccessReason::ActiveEntitled
    );
}

#[test]
fn a_custom_amount_without_tiers_grants_access_above_the_minimum() {
    let mut m = member(Some("active_patron"), Some("Paid"), true);
    m.entitled_tiers.clear();
    let policy = MembershipPolicy {
        min_entitled_cents: 300,
        ..Default::default()
    };
    assert!(decide(Some(&m), false, &policy, now()).granted);
    m.entitled_amount_cents = 299;
    assert!(!decide(Some(&m), false, &policy, now()).granted);
}

#[test]
fn declined_patrons_keep_access_until_the_grace_window_ends() {
    let policy = MembershipPolicy::default();
    let mut m = member(Some("declined_patron"), Some("Declined"), false);
    m.last_charge_date = Some(now() - Duration::days(6));
    assert_eq!(
        decide(Some(&m), true, &policy, now()).reason,
        AccessReason::DeclinedInGrace
    );
    m.last_charge_date = Some(now() - Duration::days(8));
    assert_eq!(
        decide(Some(&m), true, &policy, now()).reason,
        AccessReason::DeclinedGraceOver
    );
    m.last_charge_date = None;
    assert!(!decide(Some(&m), true, &policy, now()).granted);
}

#[test]
fn billing_time_entitlement_drop_keeps_access_only_for_members_who_had_it() {
    let policy = MembershipPolicy::default();
    let mut m = member(Some("active_patron"), Some("Pending"), false);
    m.last_charge_date = Some(now() - Duration::days(31));
    m.next_charge_date = Some(now() - Duration::days(1));
    assert_eq!(
        decide(Some(&m), true, &policy, now()).reason,
        AccessReason::BillingGrace
    );
    assert_eq!(
        decide(Some(&m), false, &policy, now()).reason,
        AccessReason::ActiveNotEntitled
    );
    m.next_charge_date = Some(now() - Duration::days(8));
    assert!(!decide(Some(&m), true, &policy, now()).granted);
}

#[test]
fn fraud_ends_access_and_sessions_at_once_even_when_entitled() {
    let m = member(Some("active_patron"), Some("Fraud"), true);
    let d = decide(Some(&m), true, &MembershipPolicy::default(), now());
    assert!(!d.granted && d.end_sessions);
}

#[test]
fn free_trials_follow_the_policy_switch() {
    let m = member(Some("active_patron"), Some("Free Trial"), true);
    assert!(decide(Some(&m), false, &MembershipPolicy::default(), now()).granted);
    let strict = MembershipPolicy {
        allow_free_trials: false,
        ..Default::default()
    };
    assert_eq!(
        decide(Some(&m), false, &strict, now()).reason,
        AccessReason::FreeTrialNotAllowed
    );
}

#[test]
fn unknown_patron_status_counts_as_never_pledged() {
    assert_eq!(PatronStatus::parse("vip_patron"), None);
    assert_eq!(
        ChargeStatus::parse("Chargeback"),
        ChargeStatus::Other("Chargeback".into())
    );
}

#[test]
fn tier_title_is_the_most_expensive_paid_tier() {
    let mut m = member(Some("active_patron"), Some("Paid"), true);
    m.entitled_tiers = vec![tier(0), tier(1000), tier(300)];
    assert_eq!(m.tier_title(), Some("$10"));
}
