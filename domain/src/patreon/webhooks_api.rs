//! Patreon's webhooks API, called with the creator token (`PATREON_CREATOR_ACCESS_TOKEN`):
//! list the client's webhooks, register one, pause or unpause one (docs/patreon-api.md §7).

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::{PatreonClient, PatreonError, client::check_status};

/// The triggers to subscribe to: every member event, since charge changes arrive as
/// `members:update` and cancellations as either an update or a pledge delete.
pub const MEMBER_TRIGGERS: [&str; 6] = [
    "members:create",
    "members:update",
    "members:delete",
    "members:pledge:create",
    "members:pledge:update",
    "members:pledge:delete",
];

/// A webhook as Patreon reports it. `Debug` redacts the secret.
#[derive(Debug)]
pub struct Webhook {
    pub id: String,
    pub uri: String,
    pub triggers: Vec<String>,
    /// Patreon paused it after repeated failures; events queue until it is unpaused.
    pub paused: bool,
    pub num_consecutive_times_failed: u32,
    pub last_attempted_at: Option<DateTime<Utc>>,
    /// Signs every delivery (`X-Patreon-Signature`); the api needs it as
    /// `PATREON_WEBHOOK_SECRET`.
    pub secret: Option<SecretString>,
}

#[derive(Deserialize)]
struct Resource {
    id: String,
    attributes: Attributes,
}

#[derive(Deserialize)]
struct Attributes {
    uri: String,
    #[serde(default)]
    triggers: Vec<String>,
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    num_consecutive_times_failed: u32,
    last_attempted_at: Option<DateTime<Utc>>,
    secret: Option<SecretString>,
}

impl From<Resource> for Webhook {
    fn from(r: Resource) -> Self {
        let a = r.attributes;
        Webhook {
            id: r.id,
            uri: a.uri,
            triggers: a.triggers,
            paused: a.paused,
            num_consecutive_times_failed: a.num_consecutive_times_failed,
            last_attempted_at: a.last_attempted_at,
            secret: a.secret,
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: Value) -> Result<T, PatreonError> {
    serde_json::from_value(body["data"].clone())
        .map_err(|_| PatreonError::BadResponse("not a webhook document".into()))
}

impl PatreonClient {
    /// The webhooks this client registered.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, PatreonError> {
        let body = self
            .webhooks_call(Method::GET, "/api/oauth2/v2/webhooks", None)
            .await?;
        let resources: Vec<Resource> = parse(body)?;
        Ok(resources.into_iter().map(Webhook::from).collect())
    }

    /// Registers `uri` for `triggers` on our campaign; the answer carries the secret.
    pub async fn create_webhook(
        &self,
        uri: &Url,
        triggers: &[&str],
    ) -> Result<Webhook, PatreonError> {
        let body = json!({ "data": {
            "type": "webhook",
            "attributes": { "triggers": triggers, "uri": uri.as_str() },
            "relationships": { "campaign": { "data": {
                "type": "campaign", "id": self.settings.campaign_id,
            } } },
        } });
        let body = self
            .webhooks_call(Method::POST, "/api/oauth2/v2/webhooks", Some(body))
            .await?;
        parse::<Resource>(body).map(Webhook::from)
    }

    /// Pauses or unpauses webhook `id`; unpausing makes Patreon send what queued meanwhile.
    pub async fn set_paused(&self, id: &str, paused: bool) -> Result<Webhook, PatreonError> {
        // Webhook ids are numeric: anything else must not reach a URL path.
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PatreonError::BadResponse("malformed webhook id".into()));
        }
        let body = json!({ "data": {
            "type": "webhook", "id": id, "attributes": { "paused": paused },
        } });
        let path = format!("/api/oauth2/v2/webhooks/{id}");
        let body = self.webhooks_call(Method::PATCH, &path, Some(body)).await?;
        parse::<Resource>(body).map(Webhook::from)
    }

    async fn webhooks_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, PatreonError> {
        let result = self.webhooks_call_unobserved(method, path, body).await;
        self.settle("webhooks", result).await
    }

    async fn webhooks_call_unobserved(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, PatreonError> {
        let token = self
            .settings
            .creator_access_token
            .as_ref()
            .ok_or(PatreonError::NoCreatorToken)?;
        self.take_budget(Some(token)).await?;
        let mut request = self
            .http
            .request(method, self.endpoint(path))
            .bearer_auth(token.expose_secret());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(PatreonError::from_transport)?;
        check_status(response)
            .await?
            .json()
            .await
            .map_err(PatreonError::from_transport)
    }
}
