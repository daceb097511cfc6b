//! JSON:API query parsing (`include`, `fields[type]`, `page[..]`) and resource rendering.

use std::collections::{BTreeSet, HashMap, HashSet};

use poem::Response;
use serde_json::{Map, Value, json};

use crate::errors::bad_parameter;
use crate::model::{CREATOR_USER_ID, MockMembership, MockTier, MockUser};

/// A parsed API query string.
#[derive(Debug, Default)]
pub(crate) struct ApiQuery {
    pub include: BTreeSet<String>,
    fields: HashMap<String, Vec<String>>,
    pub params: HashMap<String, String>,
}

impl ApiQuery {
    /// Parse a raw query. Brackets must arrive percent-encoded (`fields%5Buser%5D`), as on
    /// Patreon, where raw brackets give a 400.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<ApiQuery, Box<Response>> {
        let raw = raw.unwrap_or("");
        if raw.contains('[') || raw.contains(']') {
            return Err(Box::new(bad_parameter(
                "query",
                "Brackets in query parameter names must be URL-encoded.",
            )));
        }
        let mut q = ApiQuery::default();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            let list = || -> Vec<String> {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            };
            if key == "include" {
                for inc in list() {
                    if !allowed.contains(&inc.as_str()) {
                        let detail = format!("Invalid include: '{inc}'.");
                        return Err(Box::new(bad_parameter("include", &detail)));
                    }
                    q.include.insert(inc);
                }
            } else if let Some(kind) = key
                .strip_prefix("fields[")
                .and_then(|k| k.strip_suffix(']'))
            {
                q.fields.insert(kind.to_string(), list());
            } else {
                q.params.insert(key.into_owned(), value.into_owned());
            }
        }
        Ok(q)
    }

    /// A query built in code: `include` and `fields[type]` lists (comma-separated).
    pub fn with_fields(include: &[&str], fields: &[(&str, &str)]) -> ApiQuery {
        let split = |list: &str| list.split(',').map(|s| s.trim().to_string()).collect();
        ApiQuery {
            include: include.iter().map(|s| s.to_string()).collect(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), split(v)))
                .collect(),
            params: HashMap::new(),
        }
    }

    pub fn includes(&self, name: &str) -> bool {
        self.include.contains(name)
    }

    fn fields(&self, kind: &str) -> &[String] {
        self.fields.get(kind).map(Vec::as_slice).unwrap_or_default()
    }
}

fn attributes(names: &[String], mut value_of: impl FnMut(&str) -> Option<Value>) -> Value {
    let map: Map<String, Value> = names
        .iter()
        .filter_map(|n| value_of(n).map(|v| (n.clone(), v)))
        .collect();
    Value::Object(map)
}

fn user_attr(u: &MockUser, name: &str, show_email: bool) -> Option<Value> {
    let mut parts = u.full_name.splitn(2, ' ');
    let (first, last) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    Some(match name {
        "email" if show_email => json!(u.email),
        "full_name" => json!(u.full_name),
        "first_name" => json!(first),
        "last_name" => json!(last),
        "image_url" | "thumb_url" => json!(u.image_url),
        "is_email_verified" => json!(u.is_email_verified),
        "url" => json!(format!("https://www.patreon.com/user?u={}", u.id)),
        "vanity" | "about" => Value::Null,
        "created" => json!("2020-01-01T00:00:00+00:00"),
        "is_creator" => json!(u.id == CREATOR_USER_ID),
        "hide_pledges" | "can_see_nsfw" => json!(false),
        "like_count" => json!(0),
        "social_connections" => json!({}),
        _ => return None,
    })
}

fn member_attr(u: &MockUser, m: &MockMembership, name: &str, show_email: bool) -> Option<Value> {
    let lifetime = if m.patron_status.is_some() {
        m.currently_entitled_amount_cents
            .max(m.will_pay_amount_cents)
            * 3
    } else {
        0
    };
    Some(match name {
        "patron_status" => json!(m.patron_status),
        "last_charge_status" => json!(m.last_charge_status),
        "last_charge_date" => json!(m.last_charge_date),
        "next_charge_date" => json!(m.next_charge_date),
        "currently_entitled_amount_cents" => json!(m.currently_entitled_amount_cents),
        "will_pay_amount_cents" => json!(m.will_pay_amount_cents),
        "pledge_relationship_start" => json!(m.pledge_relationship_start),
        "pledge_cadence" => json!(m.pledge_cadence),
        "is_free_trial" => json!(m.is_free_trial),
        "is_gifted" => json!(m.is_gifted),
        "campaign_lifetime_support_cents" | "lifetime_support_cents" => json!(lifetime),
        "email" if show_email => json!(u.email),
        "full_name" => json!(u.full_name),
        "is_follower" => json!(false),
        "note" => json!(""),
        _ => return None,
    })
}

fn tier_attr(t: &MockTier, name: &str) -> Option<Value> {
    Some(match name {
        "title" => json!(t.title),
        "amount_cents" => json!(t.amount_cents),
        "description" => json!(""),
        "published" => json!(true),
        "url" => json!(format!("/checkout?rid={}", t.id)),
        "patron_count" | "post_count" => json!(0),
        "requires_shipping" => json!(false),
        "discord_role_ids" | "user_limit" | "remaining" | "image_url" => Value::Null,
        _ => return None,
    })
}

fn campaign_attr(id: &str, name: &str) -> Option<Value> {
    Some(match name {
        "creation_name" => json!("mock creations"),
        "is_monthly" | "is_charged_immediately" => json!(true),
        "is_nsfw" => json!(false),
        "pay_per_name" => json!("month"),
        "pledge_url" => json!(format!("/checkout/{id}")),
        "url" => json!(format!("https://www.patreon.com/c/mock{id}")),
        "vanity" | "summary" | "one_liner" => Value::Null,
        "created_at" | "published_at" => json!("2020-01-01T00:00:00+00:00"),
        "patron_count" => json!(0),
        _ => return None,
    })
}

/// Included resources, each `(type, id)` once.
#[derive(Default)]
pub(crate) struct Included {
    items: Vec<Value>,
    seen: HashSet<(&'static str, String)>,
}

impl Included {
    fn push(&mut self, kind: &'static str, id: &str, make: impl FnOnce() -> Value) {
        if self.seen.insert((kind, id.to_string())) {
            self.items.push(make());
        }
    }
    pub fn into_vec(self) -> Vec<Value> {
        self.items
    }
}

/// Renders resources for one request.
pub(crate) struct Renderer<'a> {
    pub q: &'a ApiQuery,
    pub base_url: &'a str,
    pub show_email: bool,
}

/// Which member relationships are included (and therefore rendered).
#[derive(Clone, Copy, Default)]
pub(crate) struct MemberRels {
    pub campaign: bool,
    pub tiers: bool,
    pub user: bool,
    pub address: bool,
    pub pledge_history: bool,
}

impl Renderer<'_> {
    pub fn user(&self, u: &MockUser, memberships: Option<&[&MockMembership]>) -> Value {
        let attrs = attributes(self.q.fields("user"), |n| user_attr(u, n, self.show_email));
        let mut res = json!({ "type": "user", "id": u.id, "attributes": attrs });
        if let Some(ms) = memberships {
            let data: Vec<Value> = ms
                .iter()
                .map(|m| json!({ "type": "member", "id": m.member_id }))
                .collect();
            res["relationships"] = json!({ "memberships": { "data": data } });
        }
        res
    }

    pub fn user_ref(&self, u: &MockUser, inc: &mut Included) -> Value {
        inc.push("user", &u.id, || self.user(u, None));
        json!({ "data": { "type": "user", "id": u.id } })
    }

    /// A member resource; included campaign/tiers/user go to `inc`.
    pub fn member(
        &self,
        u: &MockUser,
        m: &MockMembership,
        rels: MemberRels,
        inc: &mut Included,
    ) -> Value {
        let attrs = attributes(self.q.fields("member"), |n| {
            member_attr(u, m, n, self.show_email)
        });
        let mut r = Map::new();
        if rels.address {
            r.insert("address".into(), json!({ "data": null }));
        }
        if rels.campaign {
            let id = &m.campaign_id;
            r.insert(
                "campaign".into(),
                json!({
                    "data": { "type": "campaign", "id": id },
                    "links": { "related": format!("{}/api/oauth2/v2/campaigns/{id}", self.base_url) }
                }),
            );
            let attrs = attributes(self.q.fields("campaign"), |n| campaign_attr(id, n));
            inc.push(
                "campaign",
                id,
                || json!({ "type": "campaign", "id": id, "attributes": attrs }),
            );
        }
        if rels.tiers {
            let data: Vec<Value> = m
                .tiers
                .iter()
                .map(|t| {
                    let attrs = attributes(self.q.fields("tier"), |n| tier_attr(t, n));
                    inc.push(
                        "tier",
                        &t.id,
                        || json!({ "type": "tier", "id": t.id, "attributes": attrs }),
                    );
                    json!({ "type": "tier", "id": t.id })
                })
                .collect();
            r.insert("currently_entitled_tiers".into(), json!({ "data": data }));
        }
        if rels.pledge_history {
            r.insert("pledge_history".into(), json!({ "data": [] }));
        }
        if rels.user {
            r.insert("user".into(), self.user_ref(u, inc));
        }
        let mut res = json!({ "type": "member", "id": m.member_id, "attributes": attrs });
        if !r.is_empty() {
            res["relationships"] = Value::Object(r);
        }
        res
    }
}
