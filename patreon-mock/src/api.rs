//! API v2 resource endpoints: `/identity`, campaign members, single member.

use std::ops::Bound;
use std::sync::Arc;

use poem::web::{Data, Path};
use poem::{Request, Response, handler};
use serde_json::{Value, json};

use crate::errors::{
    bad_parameter, forbidden_no_user_agent, json_response, not_found, unauthorized,
};
use crate::faults::{Ep, check_client_rate, check_token_rate, inject};
use crate::model::{CREATOR_USER_ID, MockMembership, MockUser};
use crate::render::{ApiQuery, Included, MemberRels, Renderer};
use crate::state::{CREATOR_FAMILY, Principal, Shared};

const IDENTITY_INCLUDES: &[&str] = &[
    "memberships",
    "memberships.campaign",
    "memberships.currently_entitled_tiers",
    "campaign",
];
const MEMBER_INCLUDES: &[&str] = &[
    "user",
    "currently_entitled_tiers",
    "campaign",
    "address",
    "pledge_history",
];
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 20;

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split_whitespace().any(|s| s == wanted)
}

fn bearer(req: &Request) -> &str {
    req.header("authorization")
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or("")
}

/// User-Agent, faults, client rate limit, bearer lookup, token rate limit.
pub(crate) async fn admit(shared: &Shared, req: &Request, ep: Ep) -> Result<Principal, Response> {
    if req
        .header("user-agent")
        .is_none_or(|ua| ua.trim().is_empty())
    {
        return Err(forbidden_no_user_agent());
    }
    if let Some(resp) = inject(shared, ep).await {
        return Err(resp);
    }
    if let Some(resp) = check_client_rate(shared) {
        return Err(resp);
    }
    let principal = shared.principal(bearer(req)).ok_or_else(unauthorized)?;
    let family = match &principal {
        Principal::Creator => CREATOR_FAMILY,
        Principal::User { family, .. } => *family,
    };
    match check_token_rate(shared, family) {
        Some(resp) => Err(resp),
        None => Ok(principal),
    }
}

fn respond(result: Result<Value, Response>) -> Response {
    match result {
        Ok(body) => json_response(200, &body),
        Err(resp) => resp,
    }
}

#[handler]
pub(crate) async fn identity(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    shared.lock().stats.identity_calls += 1;
    respond(identity_inner(req, shared).await)
}

async fn identity_inner(req: &Request, shared: &Shared) -> Result<Value, Response> {
    let principal = admit(shared, req, Ep::Identity).await?;
    let q = ApiQuery::parse(req.uri().query(), IDENTITY_INCLUDES).map_err(|e| *e)?;
    let (user, scope) = match principal {
        Principal::Creator => {
            let user = shared.lock().users.get(CREATOR_USER_ID).cloned();
            let user = user.unwrap_or_else(|| MockUser::creator(CREATOR_USER_ID));
            (
                user,
                "identity identity[email] identity.memberships".to_string(),
            )
        }
        Principal::User { user_id, scope, .. } => {
            let user = shared.lock().users.get(&user_id).cloned();
            (user.ok_or_else(unauthorized)?, scope)
        }
    };
    if !has_scope(&scope, "identity") {
        return Err(unauthorized());
    }
    let all = has_scope(&scope, "identity.memberships");
    let visible: Vec<&MockMembership> = user
        .memberships
        .iter()
        .filter(|m| all || m.campaign_id == shared.config.campaign_id)
        .collect();
    let r = Renderer {
        q: &q,
        base_url: &shared.base_url,
        show_email: has_scope(&scope, "identity[email]"),
    };
    let want_members = q.include.iter().any(|i| i.starts_with("memberships"));
    let rels = MemberRels {
        campaign: q.includes("memberships.campaign"),
        tiers: q.includes("memberships.currently_entitled_tiers"),
        ..MemberRels::default()
    };
    let mut data = r.user(&user, want_members.then_some(visible.as_slice()));
    let mut inc = Included::default();
    let mut members = Vec::new();
    if want_members {
        members = visible
            .iter()
            .map(|m| r.member(&user, m, rels, &mut inc))
            .collect();
    }
    if q.includes("campaign") {
        let own = (user.id == CREATOR_USER_ID).then(|| shared.config.campaign_id.clone());
        let link = own.map(|id| json!({ "type": "campaign", "id": id }));
        data["relationships"]["campaign"] = json!({ "data": link });
    }
    let mut body = json!({
        "data": data,
        "links": { "self": format!("{}/api/oauth2/v2/user/{}", shared.base_url, user.id) },
    });
    if !q.include.is_empty() {
        members.extend(inc.into_vec());
        body["included"] = Value::Array(members);
    }
    Ok(body)
}

fn member_rels(q: &ApiQuery) -> MemberRels {
    MemberRels {
        campaign: q.includes("campaign"),
        tiers: q.includes("currently_entitled_tiers"),
        user: q.includes("user"),
        address: q.includes("address"),
        pledge_history: q.includes("pledge_history"),
    }
}

async fn creator_only(shared: &Shared, req: &Request) -> Result<ApiQuery, Response> {
    match admit(shared, req, Ep::Members).await? {
        Principal::Creator => ApiQuery::parse(req.uri().query(), MEMBER_INCLUDES).map_err(|e| *e),
        Principal::User { .. } => Err(unauthorized()),
    }
}

#[handler]
pub(crate) async fn campaign_members(
    req: &Request,
    Path(campaign_id): Path<String>,
    Data(shared): Data<&Arc<Shared>>,
) -> Response {
    shared.lock().stats.member_calls += 1;
    respond(members_inner(req, shared, &campaign_id).await)
}

fn encode_cursor(user_id: &str) -> String {
    hex::encode(format!("c1:{user_id}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = hex::decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix("c1:").map(str::to_string)
}

async fn members_inner(
    req: &Request,
    shared: &Shared,
    campaign_id: &str,
) -> Result<Value, Response> {
    let q = creator_only(shared, req).await?;
    if campaign_id != shared.config.campaign_id {
        return Err(not_found("Campaign not found."));
    }
    let count_param = q
        .params
        .get("page[count]")
        .or_else(|| q.params.get("page[size]"));
    let count = match count_param.map(|c| c.parse::<usize>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if n > 0 => n.min(MAX_PAGE),
        Some(_) => return Err(bad_parameter("page[count]", "Invalid page size.")),
    };
    let after = match q.params.get("page[cursor]") {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(id) => Some(id),
            None => return Err(bad_parameter("page[cursor]", "Invalid or expired cursor.")),
        },
    };
    let (page, total, more) = {
        let inner = shared.lock();
        let of_campaign = |u: &&MockUser| u.membership(campaign_id).is_some();
        let total = inner.users.values().filter(of_campaign).count();
        let lower = after.as_ref().map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = inner
            .users
            .range::<String, _>((lower, Bound::Unbounded))
            .map(|(_, u)| u)
            .filter(of_campaign);
        let page: Vec<MockUser> = it.by_ref().take(count).cloned().collect();
        (page, total, it.next().is_some())
    };
    let r = Renderer {
        q: &q,
        base_url: &shared.base_url,
        show_email: true,
    };
    let rels = member_rels(&q);
    let mut inc = Included::default();
    let data: Vec<Value> = page
        .iter()
        .filter_map(|u| {
            u.membership(campaign_id)
                .map(|m| r.member(u, m, rels, &mut inc))
        })
        .collect();
    let next = page.last().filter(|_| more).map(|u| encode_cursor(&u.id));
    let mut body = json!({
        "data": data,
        "meta": { "pagination": { "cursors": { "next": next }, "total": total } },
    });
    if !q.include.is_empty() {
        body["included"] = Value::Array(inc.into_vec());
    }
    if let Some(cursor) = next {
        let url = format!(
            "{}/api/oauth2/v2/campaigns/{campaign_id}/members?page%5Bcursor%5D={cursor}",
            shared.base_url
        );
        body["links"] = json!({ "next": url });
    }
    Ok(body)
}

#[handler]
pub(crate) async fn member(
    req: &Request,
    Path(member_id): Path<String>,
    Data(shared): Data<&Arc<Shared>>,
) -> Response {
    shared.lock().stats.member_calls += 1;
    respond(member_inner(req, shared, &member_id).await)
}

async fn member_inner(req: &Request, shared: &Shared, member_id: &str) -> Result<Value, Response> {
    let q = creator_only(shared, req).await?;
    let campaign_id = &shared.config.campaign_id;
    let found = shared.lock().users.values().find_map(|u| {
        u.memberships
            .iter()
            .find(|m| m.member_id == member_id && &m.campaign_id == campaign_id)
            .map(|m| (u.clone(), m.clone()))
    });
    let (user, m) = found.ok_or_else(|| not_found("Member not found."))?;
    let r = Renderer {
        q: &q,
        base_url: &shared.base_url,
        show_email: true,
    };
    let mut inc = Included::default();
    let data = r.member(&user, &m, member_rels(&q), &mut inc);
    let mut body = json!({
        "data": data,
        "links": { "self": format!("{}/api/oauth2/v2/members/{member_id}", shared.base_url) },
    });
    if !q.include.is_empty() {
        body["included"] = Value::Array(inc.into_vec());
    }
    Ok(body)
}
