//! JSON:API documents from Patreon, read leniently: unknown fields are ignored, missing optional
//! attributes are `None`, and only ids and shapes we rely on are enforced.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::PatreonError;
use crate::PatreonUserId;
use crate::members::membership::{ChargeStatus, EntitledTier, MemberSnapshot, PatronStatus};

/// The signed-in Patreon user, with their membership of our campaign if they have one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub patreon_id: PatreonUserId,
    pub email: Option<String>,
    pub email_verified: bool,
    pub full_name: Option<String>,
    pub image_url: Option<String>,
    pub membership: Option<MemberSnapshot>,
}

fn bad(what: &str) -> PatreonError {
    PatreonError::BadResponse(what.to_owned())
}

/// Patreon user, campaign and tier ids are numeric strings; anything else is refused.
pub fn is_numeric_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

fn text(attrs: &Value, key: &str) -> Option<String> {
    attrs.get(key)?.as_str().map(str::to_owned)
}

fn date(attrs: &Value, key: &str) -> Option<DateTime<Utc>> {
    let raw = attrs.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn related_ids<'a>(resource: &'a Value, relationship: &str) -> Vec<&'a str> {
    match resource.pointer(&format!("/relationships/{relationship}/data")) {
        Some(Value::Array(items)) => items.iter().filter_map(|i| i.get("id")?.as_str()).collect(),
        Some(Value::Object(_)) => resource
            .pointer(&format!("/relationships/{relationship}/data/id"))
            .and_then(Value::as_str)
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn find_included<'a>(included: &'a [Value], kind: &str, id: &str) -> Option<&'a Value> {
    included.iter().find(|r| {
        r.get("type").and_then(Value::as_str) == Some(kind)
            && r.get("id").and_then(Value::as_str) == Some(id)
    })
}

/// Reads one `member` resource; tiers are looked up in `included`.
pub fn member_snapshot(member: &Value, included: &[Value]) -> Result<MemberSnapshot, PatreonError> {
    let member_id = member
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("member without id"))?;
    let empty = Value::Null;
    let attrs = member.get("attributes").unwrap_or(&empty);
    let entitled_tiers = related_ids(member, "currently_entitled_tiers")
        .into_iter()
        .map(|id| {
            let tier_attrs = find_included(included, "tier", id).and_then(|t| t.get("attributes"));
            EntitledTier {
                id: id.to_owned(),
                title: tier_attrs.and_then(|a| text(a, "title")),
                amount_cents: tier_attrs
                    .and_then(|a| a.get("amount_cents")?.as_i64())
                    .unwrap_or(0),
            }
        })
        .collect();
    Ok(MemberSnapshot {
        member_id: member_id.to_owned(),
        patron_status: text(attrs, "patron_status")
            .as_deref()
            .and_then(PatronStatus::parse),
        last_charge_status: text(attrs, "last_charge_status")
            .as_deref()
            .map(ChargeStatus::parse),
        last_charge_date: date(attrs, "last_charge_date"),
        next_charge_date: date(attrs, "next_charge_date"),
        pledge_started_at: date(attrs, "pledge_relationship_start"),
        entitled_amount_cents: attrs
            .get("currently_entitled_amount_cents")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        entitled_tiers,
        is_free_trial: attrs
            .get("is_free_trial")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Reads `/identity` and picks the membership whose campaign is ours. A membership of another
/// creator's campaign is never ours. When the campaign link is missing and only the client owner's
/// campaign is visible (no `identity.memberships` scope), the single membership is ours.
pub fn parse_identity(
    body: &Value,
    campaign_id: &str,
    all_memberships_visible: bool,
) -> Result<Identity, PatreonError> {
    let data = body
        .get("data")
        .ok_or_else(|| bad("identity without data"))?;
    if data.get("type").and_then(Value::as_str) != Some("user") {
        return Err(bad("identity data is not a user"));
    }
    let patreon_id = data
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| is_numeric_id(id));
    let patreon_id = patreon_id.ok_or_else(|| bad("identity without a numeric user id"))?;
    let empty = Value::Null;
    let attrs = data.get("attributes").unwrap_or(&empty);
    let included = body
        .get("included")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);

    let members: Vec<&Value> = related_ids(data, "memberships")
        .into_iter()
        .filter_map(|id| find_included(included, "member", id))
        .collect();
    let ours = members
        .iter()
        .find(|m| related_ids(m, "campaign").first() == Some(&campaign_id));
    let unlinked_single = match members.as_slice() {
        [only] if !all_memberships_visible && related_ids(only, "campaign").is_empty() => {
            Some(only)
        }
        _ => None,
    };
    let membership = ours
        .or(unlinked_single)
        .map(|m| member_snapshot(m, included))
        .transpose()?;

    Ok(Identity {
        patreon_id: PatreonUserId::from(patreon_id),
        email: text(attrs, "email").filter(|e| !e.is_empty() && e.len() <= 320),
        email_verified: attrs
            .get("is_email_verified")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        full_name: text(attrs, "full_name").map(|n| n.chars().take(200).collect()),
        image_url: text(attrs, "image_url")
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        membership,
    })
}

/// A member as the creator token sees it (`/members/{id}`, and webhook payloads): whose
/// membership it is, of which campaign, and its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignMember {
    pub patreon_user_id: Option<PatreonUserId>,
    pub campaign_id: Option<String>,
    pub snapshot: MemberSnapshot,
}

/// Reads a document whose `data` is one `member` (with `user`, `campaign` and tiers included
/// when asked for).
pub fn parse_member_document(body: &Value) -> Result<CampaignMember, PatreonError> {
    let data = body
        .get("data")
        .ok_or_else(|| bad("member document without data"))?;
    if data.get("type").and_then(Value::as_str) != Some("member") {
        return Err(bad("member document data is not a member"));
    }
    let included = body
        .get("included")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let first_id = |relationship: &str| {
        related_ids(data, relationship)
            .first()
            .filter(|id| is_numeric_id(id))
            .map(|id| (*id).to_owned())
    };
    Ok(CampaignMember {
        patreon_user_id: first_id("user").map(PatreonUserId::from),
        campaign_id: first_id("campaign"),
        snapshot: member_snapshot(data, included)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        include_str!("../../../patreon-mock/fixtures/identity-with-memberships.json");

    fn sample() -> Value {
        serde_json::from_str(SAMPLE).unwrap()
    }

    #[test]
    fn reads_the_documented_identity_sample() {
        let id = parse_identity(&sample(), "1234560", false).unwrap();
        assert_eq!(id.patreon_id, "111836593");
        assert_eq!(id.email.as_deref(), Some("some_email@email.com"));
        let m = id.membership.unwrap();
        assert_eq!(m.member_id, "03ca69c3-ebea-4b9a-8fac-e4a837873254");
        assert_eq!(m.patron_status, Some(PatronStatus::Active));
        assert_eq!(m.last_charge_status, Some(ChargeStatus::Paid));
        assert_eq!(m.entitled_amount_cents, 400);
        assert_eq!(m.tier_title(), Some("Patron"));
    }

    #[test]
    fn a_membership_of_another_campaign_is_not_ours() {
        let id = parse_identity(&sample(), "999", false).unwrap();
        assert_eq!(id.membership, None);
    }

    #[test]
    fn an_unlinked_single_membership_is_ours_only_without_the_memberships_scope() {
        let mut body = sample();
        body["included"][0]["relationships"]
            .as_object_mut()
            .unwrap()
            .remove("campaign");
        assert!(
            parse_identity(&body, "1234560", false)
                .unwrap()
                .membership
                .is_some()
        );
        assert!(
            parse_identity(&body, "1234560", true)
                .unwrap()
                .membership
                .is_none()
        );
    }

    #[test]
    fn reads_the_documented_webhook_member() {
        let body: Value = serde_json::from_str(include_str!(
            "../../../patreon-mock/fixtures/webhook-members-pledge-create.json"
        ))
        .unwrap();
        let m = parse_member_document(&body).unwrap();
        assert!(m.patreon_user_id.is_some());
        assert!(m.campaign_id.is_some());
        assert!(!m.snapshot.member_id.is_empty());
        assert!(
            parse_member_document(&sample()).is_err(),
            "a user is not a member"
        );
    }

    #[test]
    fn refuses_identities_without_a_numeric_user_id() {
        let mut body = sample();
        body["data"]["id"] = Value::from("1' OR '1'='1");
        assert!(parse_identity(&body, "1234560", false).is_err());
        assert!(parse_identity(&Value::Null, "1234560", false).is_err());
    }
}
