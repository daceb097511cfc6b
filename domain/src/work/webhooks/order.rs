//! Whether a delivery is older than the member's stored state. Patreon does not order its
//! deliveries and re-sends failed ones hours later, and a body carries no time of sending; so a
//! delivery is ordered by what it says (the member's charge and pledge dates) and, when it says
//! nothing newer, by when it was first received.

use chrono::{DateTime, Duration, Utc};
use entity::user;

use crate::members::membership::MemberSnapshot;

/// A pledge starts once per relationship, so a new one is days or more after the last; the
/// margin absorbs a difference in precision between the API's and the deliveries' timestamps.
const PLEDGE_START_MARGIN: Duration = Duration::minutes(1);

/// Why a delivery changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Older {
    /// It is about an earlier charge than the stored one.
    Charge,
    /// It is about an earlier pledge than the stored one.
    Pledge,
    /// A check read Patreon's API after it was first received.
    CheckedSince,
    /// A delivery first received after it, saying nothing older, was applied already.
    LaterDelivery,
}

impl Older {
    /// Only the payload's dates said so: a check through the API makes sure. After a check or a
    /// later delivery (whose change asked for its own check) there is nothing to make sure of.
    pub(crate) fn owes_recheck(self) -> bool {
        matches!(self, Older::Charge | Older::Pledge)
    }
}

/// Whether a delivery saying `said`, first received at `received_at`, is older than `stored`.
pub(crate) fn older_than_stored(
    said: &MemberSnapshot,
    received_at: DateTime<Utc>,
    stored: &user::Model,
) -> Option<Older> {
    let charge = compare(
        said.last_charge_date,
        stored.last_charge_date,
        Duration::zero(),
    );
    let pledge = compare(
        said.pledge_started_at,
        stored.pledge_started_at,
        PLEDGE_START_MARGIN,
    );
    if charge == Some(Said::Earlier) {
        return Some(Older::Charge);
    }
    if pledge == Some(Said::Earlier) {
        return Some(Older::Pledge);
    }
    if stored.last_checked.is_some_and(|at| at > received_at) {
        return Some(Older::CheckedSince);
    }
    let says_newer = charge == Some(Said::Later) || pledge == Some(Said::Later);
    let received_before_applied = stored
        .delivery_received_at
        .is_some_and(|at| at > received_at);
    (received_before_applied && !says_newer).then_some(Older::LaterDelivery)
}

#[derive(Debug, PartialEq, Eq)]
enum Said {
    Earlier,
    Same,
    Later,
}

/// How a date in the delivery compares with the stored one; `None` when either is unknown.
fn compare(
    said: Option<DateTime<Utc>>,
    stored: Option<DateTime<Utc>>,
    margin: Duration,
) -> Option<Said> {
    let (said, stored) = (said?, stored?);
    Some(if said < stored - margin {
        Said::Earlier
    } else if said > stored + margin {
        Said::Later
    } else {
        Said::Same
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    fn said(charge: Option<i64>, pledge: Option<i64>) -> MemberSnapshot {
        MemberSnapshot {
            member_id: "m-1".into(),
            patron_status: None,
            last_charge_status: None,
            last_charge_date: charge.map(at),
            next_charge_date: None,
            pledge_started_at: pledge.map(at),
            entitled_amount_cents: 0,
            entitled_tiers: Vec::new(),
            is_free_trial: false,
        }
    }

    fn stored(charge: Option<i64>, pledge: Option<i64>, delivery: Option<i64>) -> user::Model {
        user::Model {
            id: UserId(1),
            patreon_id: "1".into(),
            email: None,
            full_name: None,
            avatar_url: None,
            patreon_member_id: None,
            patron_status: None,
            last_charge_status: None,
            last_charge_date: charge.map(at),
            pledge_started_at: pledge.map(at),
            entitled_amount_cents: 0,
            tier_title: None,
            membership_active: false,
            last_checked: None,
            access_token: None,
            refresh_token: None,
            token_expires_at: None,
            token_version: 0,
            token_refresh_lease_until: None,
            needs_relogin: false,
            is_admin: false,
            imported_at: None,
            imported_team: false,
            delivery_received_at: delivery.map(at),
            created_at: at(0),
            updated_at: at(0),
        }
    }

    #[test]
    fn an_earlier_charge_or_pledge_is_older_whenever_it_was_received() {
        let user = stored(Some(100), Some(50), Some(0));
        assert_eq!(
            older_than_stored(&said(Some(99), Some(50)), at(500), &user),
            Some(Older::Charge)
        );
        assert_eq!(
            older_than_stored(&said(None, Some(10)), at(500), &user),
            Some(Older::Pledge)
        );
        assert!(Older::Pledge.owes_recheck() && Older::Charge.owes_recheck());
    }

    #[test]
    fn the_same_dates_received_before_the_last_applied_delivery_are_older() {
        let user = stored(Some(100), Some(50), Some(200));
        assert_eq!(
            older_than_stored(&said(Some(100), Some(50)), at(199), &user),
            Some(Older::LaterDelivery)
        );
        assert_eq!(
            older_than_stored(&said(Some(100), Some(50)), at(200), &user),
            None,
            "received together: not older"
        );
        assert!(!Older::LaterDelivery.owes_recheck());
    }

    #[test]
    fn a_newer_charge_or_pledge_is_news_even_when_received_earlier() {
        let user = stored(Some(100), Some(50), Some(200));
        assert_eq!(
            older_than_stored(&said(Some(101), Some(50)), at(150), &user),
            None
        );
        assert_eq!(
            older_than_stored(&said(None, Some(90)), at(150), &user),
            None
        );
    }

    #[test]
    fn a_pledge_start_within_the_margin_is_the_same_pledge() {
        let user = stored(None, Some(50), None);
        let mut close = said(None, Some(50));
        close.pledge_started_at = close.pledge_started_at.map(|d| d - Duration::seconds(1));
        assert_eq!(older_than_stored(&close, at(0), &user), None);
    }

    #[test]
    fn a_check_after_the_first_receipt_makes_a_delivery_older() {
        let mut user = stored(Some(100), None, None);
        user.last_checked = Some(at(300));
        assert_eq!(
            older_than_stored(&said(Some(100), None), at(299), &user),
            Some(Older::CheckedSince)
        );
        assert_eq!(
            older_than_stored(&said(Some(100), None), at(301), &user),
            None
        );
    }
}
