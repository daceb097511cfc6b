//! `/api/oauth2/v2/webhooks`: list, create and update (pause, unpause, move) the creator's
//! webhooks. JSON:API bodies as in docs/patreon-api.md §7 "Registration"; creator token only.

use std::sync::Arc;

use poem::web::{Data, Path};
use poem::{Body, Request, Response, handler};
use serde_json::{Value, json};

use crate::api::admit;
use crate::errors::{error_object, json_response, not_found, unauthorized};
use crate::faults::Ep;
use crate::state::{Principal, Shared};
use crate::webhooks::{KNOWN_TRIGGERS, MockWebhook, WebhookUpdate};

/// 400 naming the offending member of the request body (JSON:API `source.pointer`).
fn invalid(pointer: &str, detail: &str) -> Response {
    let mut err = error_object(
        400,
        Some(3),
        "ParameterInvalid",
        "Invalid parameter",
        detail,
    );
    if let Some(obj) = err.as_object_mut() {
        obj.insert("source".into(), json!({ "pointer": pointer }));
    }
    json_response(400, &json!({ "errors": [err] }))
}

async fn creator_only(shared: &Shared, req: &Request) -> Result<(), Response> {
    match admit(shared, req, Ep::Webhooks).await? {
        Principal::Creator => Ok(()),
        Principal::User { .. } => Err(unauthorized()),
    }
}

/// The request's `data` object, checked to be a `webhook`.
async fn webhook_data(body: Body) -> Result<Value, Response> {
    let bytes = body
        .into_bytes()
        .await
        .map_err(|_| invalid("/data", "Unreadable body."))?;
    let mut doc: Value = serde_json::from_slice(&bytes)
        .map_err(|_| invalid("/data", "The body must be a JSON:API document."))?;
    let data = doc["data"].take();
    if data["type"] != "webhook" {
        return Err(invalid(
            "/data/type",
            "Expected a resource of type 'webhook'.",
        ));
    }
    Ok(data)
}

/// An absolute http(s) URL with a host.
fn parse_uri(value: &Value) -> Option<String> {
    let uri = value.as_str()?;
    let url = url::Url::parse(uri).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then(|| uri.to_string())
}

/// A non-empty list of triggers Patreon knows.
fn parse_triggers(value: &Value) -> Option<Vec<String>> {
    let list = value.as_array().filter(|l| !l.is_empty())?;
    list.iter()
        .map(|t| {
            t.as_str()
                .filter(|t| KNOWN_TRIGGERS.contains(t))
                .map(str::to_string)
        })
        .collect()
}

fn bad_uri() -> Response {
    invalid("/data/attributes/uri", "uri must be an http(s) URL.")
}

fn bad_triggers() -> Response {
    invalid("/data/attributes/triggers", "Unknown or missing triggers.")
}

fn resource(hook: &MockWebhook, campaign_id: &str) -> Value {
    json!({
        "type": "webhook",
        "id": hook.id,
        "attributes": {
            "triggers": hook.triggers,
            "uri": hook.uri,
            "secret": hook.secret,
            "paused": hook.paused,
            "last_attempted_at": hook.last_attempted_at,
            "num_consecutive_times_failed": hook.num_consecutive_times_failed,
        },
        "relationships": { "campaign": { "data": { "type": "campaign", "id": campaign_id } } },
    })
}

fn answer(result: Result<(u16, Value), Response>) -> Response {
    match result {
        Ok((status, body)) => json_response(status, &body),
        Err(resp) => resp,
    }
}

#[handler]
pub(crate) async fn list_webhooks(req: &Request, Data(shared): Data<&Arc<Shared>>) -> Response {
    answer(list_inner(req, shared).await)
}

async fn list_inner(req: &Request, shared: &Shared) -> Result<(u16, Value), Response> {
    creator_only(shared, req).await?;
    let campaign_id = &shared.config.campaign_id;
    let hooks = shared.lock().webhooks.list();
    let data: Vec<Value> = hooks.iter().map(|h| resource(h, campaign_id)).collect();
    let total = data.len();
    Ok((
        200,
        json!({ "data": data, "meta": { "pagination": { "total": total } } }),
    ))
}

#[handler]
pub(crate) async fn create_webhook(
    req: &Request,
    body: Body,
    Data(shared): Data<&Arc<Shared>>,
) -> Response {
    answer(create_inner(req, body, shared).await)
}

async fn create_inner(
    req: &Request,
    body: Body,
    shared: &Shared,
) -> Result<(u16, Value), Response> {
    creator_only(shared, req).await?;
    let data = webhook_data(body).await?;
    let uri = parse_uri(&data["attributes"]["uri"]).ok_or_else(bad_uri)?;
    let triggers = parse_triggers(&data["attributes"]["triggers"]).ok_or_else(bad_triggers)?;
    let campaign = &data["relationships"]["campaign"]["data"];
    if campaign["type"] != "campaign" || !campaign["id"].is_string() {
        let pointer = "/data/relationships/campaign";
        return Err(invalid(pointer, "A campaign relationship is required."));
    }
    let campaign_id = &shared.config.campaign_id;
    if campaign["id"] != campaign_id.as_str() {
        return Err(not_found("Campaign not found."));
    }
    let hook = shared.lock().webhooks.register(uri, triggers);
    let body = json!({
        "data": resource(&hook, campaign_id),
        "links": { "self": format!("{}/api/oauth2/v2/webhooks/{}", shared.base_url, hook.id) },
    });
    Ok((201, body))
}

#[handler]
pub(crate) async fn update_webhook(
    req: &Request,
    Path(id): Path<String>,
    body: Body,
    Data(shared): Data<&Arc<Shared>>,
) -> Response {
    answer(update_inner(req, &id, body, shared).await)
}

async fn update_inner(
    req: &Request,
    id: &str,
    body: Body,
    shared: &Arc<Shared>,
) -> Result<(u16, Value), Response> {
    creator_only(shared, req).await?;
    let attrs = webhook_data(body).await?["attributes"].take();
    let paused = match &attrs["paused"] {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        _ => {
            return Err(invalid(
                "/data/attributes/paused",
                "paused must be a boolean.",
            ));
        }
    };
    let update = WebhookUpdate {
        uri: match &attrs["uri"] {
            Value::Null => None,
            uri => Some(parse_uri(uri).ok_or_else(bad_uri)?),
        },
        triggers: match &attrs["triggers"] {
            Value::Null => None,
            triggers => Some(parse_triggers(triggers).ok_or_else(bad_triggers)?),
        },
        paused,
    };
    let updated = shared.lock().webhooks.update(id, update);
    let Some((hook, start_sending)) = updated else {
        return Err(not_found("Webhook not found."));
    };
    if start_sending {
        // Unpausing sends the backlog, as Patreon does.
        shared.start_sending(hook.id.parse::<u64>().ok());
    }
    Ok((
        200,
        json!({ "data": resource(&hook, &shared.config.campaign_id) }),
    ))
}
