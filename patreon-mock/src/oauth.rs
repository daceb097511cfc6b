//! `GET /oauth2/authorize` and `POST /api/oauth2/token`.

use std::collections::HashMap;
use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::Data;
use poem::{Body, Request, Response, handler};
use serde_json::json;

use crate::errors::{forbidden_no_user_agent, json_response, token_error};
use crate::faults::{Ep, check_client_rate, check_token_rate, inject};
use crate::page::{chooser, error_page};
use crate::state::{Shared, TokenPair};

const KNOWN_SCOPES: &[&str] = &[
    "identity",
    "identity[email]",
    "identity.memberships",
    "campaigns",
    "campaigns.members",
    "campaigns.members[email]",
    "campaigns.members.address",
    "campaigns.posts",
    "w:campaigns.webhook",
    "w:identity.clients",
    "campaigns.lives",
];

fn redirect(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .header("cache-control", "no-store")
        .finish()
}

#[handler]
pub(crate) fn authorize(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    let raw = req.uri().query().unwrap_or("");
    {
        let mut inner = shared.lock();
        inner.stats.authorize += 1;
        inner.stats.last_authorize_query = Some(raw.to_string());
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let config = &shared.config;
    if get("client_id") != Some(config.client_id.as_str()) {
        return error_page("Unknown client_id.");
    }
    if get("response_type") != Some("code") {
        return error_page("response_type must be \"code\".");
    }
    let Some(redirect_uri) = get("redirect_uri") else {
        return error_page("Missing redirect_uri.");
    };
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return error_page("redirect_uri must be an absolute URL.");
    };
    let scope = get("scope")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("identity");
    if let Some(bad) = scope.split_whitespace().find(|s| !KNOWN_SCOPES.contains(s)) {
        return error_page(&format!("Invalid scope: {bad}"));
    }
    let state = get("state");
    if get("deny") == Some("1") {
        let mut q = target.query_pairs_mut();
        q.append_pair("error", "access_denied");
        q.append_pair("error_description", "The user denied the request.");
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        drop(q);
        return redirect(target.as_str());
    }
    let chosen = get("as")
        .map(str::to_string)
        .or_else(|| config.auto_consent_user.clone());
    let mut inner = shared.lock();
    if let Some(user_id) = chosen.filter(|id| inner.users.contains_key(id)) {
        let code = inner.issue_code(&user_id, redirect_uri, scope);
        drop(inner);
        let mut q = target.query_pairs_mut();
        q.append_pair("code", &code);
        if let Some(state) = state {
            q.append_pair("state", state);
        }
        drop(q);
        return redirect(target.as_str());
    }
    let total = inner.users.len();
    let users: Vec<_> = inner.users.values().take(50).cloned().collect();
    drop(inner);
    let kept = pairs.iter().filter(|(k, _)| k != "as" && k != "deny");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept)
        .finish();
    chooser(
        &format!("/oauth2/authorize?{query}"),
        &users,
        total,
        &config.campaign_id,
    )
}

fn token_response(pair: TokenPair, ttl: i64) -> Response {
    json_response(
        200,
        &json!({
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": ttl,
            "scope": pair.scope,
            "token_type": "Bearer",
        }),
    )
}

fn missing(name: &str) -> Response {
    token_error(
        400,
        "invalid_request",
        Some(&format!("Missing {name} parameter.")),
    )
}

#[handler]
pub(crate) async fn token(req: &Request, body: Body, Data(shared): Data<&Arc<Shared>>) -> Response {
    let is_form = req.content_type().is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    let bytes = body.into_vec().await.unwrap_or_default();
    let p: HashMap<String, String> = if is_form {
        url::form_urlencoded::parse(&bytes).into_owned().collect()
    } else {
        HashMap::new()
    };
    let grant_type = p.get("grant_type").map(String::as_str);
    {
        let mut inner = shared.lock();
        match grant_type {
            Some("authorization_code") => inner.stats.token_code_grants += 1,
            Some("refresh_token") => inner.stats.token_refresh_grants += 1,
            _ => {}
        }
        inner.stats.last_token_request_redirect_uri = p.get("redirect_uri").cloned();
    }
    if req
        .header("user-agent")
        .is_none_or(|ua| ua.trim().is_empty())
    {
        return forbidden_no_user_agent();
    }
    if let Some(resp) = inject(shared, Ep::Token).await {
        return resp;
    }
    if let Some(resp) = check_client_rate(shared) {
        return resp;
    }
    match grant_type {
        None => missing("grant_type"),
        Some("authorization_code") => code_grant(shared, &p),
        Some("refresh_token") => refresh_grant(shared, &p),
        Some(_) => token_error(400, "unsupported_grant_type", None),
    }
}

fn client_ok(shared: &Shared, p: &HashMap<String, String>) -> bool {
    p.get("client_id") == Some(&shared.config.client_id)
        && p.get("client_secret") == Some(&shared.config.client_secret)
}

fn invalid_client() -> Response {
    token_error(401, "invalid_client", None)
}

fn invalid_grant() -> Response {
    token_error(401, "invalid_grant", None)
}

fn code_grant(shared: &Shared, p: &HashMap<String, String>) -> Response {
    let Some(code) = p.get("code") else {
        return missing("code");
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return missing("redirect_uri");
    };
    if !client_ok(shared, p) {
        return invalid_client();
    }
    let ttl = shared.config.access_token_ttl_secs;
    let mut inner = shared.lock();
    let Some(grant) = inner.take_code(code) else {
        return invalid_grant();
    };
    if &grant.redirect_uri != redirect_uri || !inner.users.contains_key(&grant.user_id) {
        return invalid_grant();
    }
    let family = inner.new_family();
    let pair = inner.issue_pair(&grant.user_id, &grant.scope, family, ttl);
    token_response(pair, ttl)
}

fn refresh_grant(shared: &Shared, p: &HashMap<String, String>) -> Response {
    let Some(refresh_token) = p.get("refresh_token") else {
        return missing("refresh_token");
    };
    if !client_ok(shared, p) {
        return invalid_client();
    }
    let family = shared.lock().refresh.get(refresh_token).map(|g| g.family);
    if let Some(resp) = family.and_then(|f| check_token_rate(shared, f)) {
        return resp;
    }
    let ttl = shared.config.access_token_ttl_secs;
    let mut inner = shared.lock();
    let Some(grant) = inner.take_refresh(refresh_token) else {
        return invalid_grant();
    };
    let pair = inner.issue_pair(&grant.user_id, &grant.scope, grant.family, ttl);
    token_response(pair, ttl)
}
