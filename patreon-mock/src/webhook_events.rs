//! The event a membership change sends: its trigger and the member document Patreon posts.

use std::sync::Arc;

use serde_json::json;

use crate::model::{MockMembership, MockUser};
use crate::render::{ApiQuery, Included, MemberRels, Renderer};

/// One membership change, rendered once and signed per webhook when sent.
#[derive(Clone)]
pub(crate) struct Event {
    pub trigger: &'static str,
    pub body: Arc<str>,
}

/// The trigger a change of one membership fires, if it changed at all: a new membership or a
/// free member starting to pay is a new pledge, a removed membership or a cancelled pledge
/// (`former_patron`) a deleted one, anything else an update.
fn trigger_for(
    before: Option<&MockMembership>,
    after: Option<&MockMembership>,
) -> Option<&'static str> {
    let status = |m: &MockMembership| m.patron_status.clone().unwrap_or_default();
    match (before, after) {
        (None, None) => None,
        (Some(b), Some(a)) if b == a => None,
        (None, Some(_)) => Some("members:pledge:create"),
        (Some(_), None) => Some("members:pledge:delete"),
        (Some(b), Some(a)) => Some(match (status(b).as_str(), status(a).as_str()) {
            ("" | "former_patron", "active_patron") => "members:pledge:create",
            (b, "former_patron") if b != "former_patron" => "members:pledge:delete",
            _ => "members:update",
        }),
    }
}

/// A membership as it ends: the mock no longer holds a removed one, but Patreon's delete
/// payload still describes the member, now former and entitled to nothing.
fn ended(m: &MockMembership) -> MockMembership {
    MockMembership {
        patron_status: Some("former_patron".into()),
        currently_entitled_amount_cents: 0,
        will_pay_amount_cents: 0,
        next_charge_date: None,
        tiers: Vec::new(),
        ..m.clone()
    }
}

/// The attributes a webhook payload carries without `fields` (those of the captured
/// `fixtures/webhook-members-pledge-create.json`).
fn payload_query() -> ApiQuery {
    let fields = [
        (
            "member",
            "campaign_lifetime_support_cents,currently_entitled_amount_cents,email,full_name,\
             is_follower,is_free_trial,last_charge_date,last_charge_status,\
             lifetime_support_cents,next_charge_date,note,patron_status,pledge_cadence,\
             pledge_relationship_start,will_pay_amount_cents",
        ),
        (
            "user",
            "about,created,first_name,full_name,hide_pledges,is_creator,last_name,like_count,\
             url,vanity",
        ),
        (
            "campaign",
            "is_charged_immediately,is_monthly,patron_count,pay_per_name,pledge_url,url,vanity",
        ),
        ("tier", "amount_cents,description,published,title,url"),
    ];
    ApiQuery::with_fields(&["user", "campaign", "currently_entitled_tiers"], &fields)
}

/// The member document Patreon posts: all attributes, user/campaign/tiers included.
fn payload(base_url: &str, user: &MockUser, m: &MockMembership) -> String {
    let q = payload_query();
    let r = Renderer {
        q: &q,
        base_url,
        show_email: true,
    };
    let rels = MemberRels {
        campaign: true,
        tiers: true,
        user: true,
        address: true,
        pledge_history: false,
    };
    let mut inc = Included::default();
    let mut data = r.member(user, m, rels, &mut inc);
    data["relationships"]["user"]["links"] =
        json!({ "related": format!("{base_url}/api/oauth2/v2/user/{}", user.id) });
    json!({
        "data": data,
        "included": inc.into_vec(),
        "links": { "self": format!("{base_url}/api/oauth2/v2/members/{}", m.member_id) },
    })
    .to_string()
}

impl Event {
    /// The event for `user` going from `before` to `after` (either may be absent), seen from
    /// `campaign_id`; `None` when that membership did not change.
    pub(crate) fn for_change(
        campaign_id: &str,
        base_url: &str,
        before: Option<&MockUser>,
        after: Option<&MockUser>,
    ) -> Option<Event> {
        let old = before.and_then(|u| u.membership(campaign_id));
        let new = after.and_then(|u| u.membership(campaign_id));
        let trigger = trigger_for(old, new)?;
        let body = match (after, new, before, old) {
            (Some(user), Some(m), _, _) => payload(base_url, user, m),
            (_, _, Some(user), Some(m)) => payload(base_url, after.unwrap_or(user), &ended(m)),
            _ => return None,
        };
        Some(Event {
            trigger,
            body: body.into(),
        })
    }
}
