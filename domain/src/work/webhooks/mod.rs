//! Patreon webhooks: verify the signature over the exact bytes received, record the delivery
//! (once per distinct body), and later apply it with the shared membership rule.
//!
//! The trigger header is not signed, so nothing here decides by it: the member state in the
//! signed body does. A body is recorded once, with its first receipt, and never applied twice,
//! however late it comes back: a signed body can be replayed by anyone who saw it. Deliveries
//! are not ordered, so one older than what is stored changes nothing (see [`order`]); the
//! recheck that follows every change settles the rest through the API.

use chrono::{DateTime, Utc};
use entity::{user, webhook_event};
use hmac::{Hmac, Mac};
use md5::Md5;
use sea_orm::{ConnectionTrait, EntityTrait};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::patreon::resources;
use crate::work::ledger::deliveries::{self, NewDelivery};
use crate::{Result, members::users};
use crate::{UserId, WebhookEventId};

mod apply;
mod order;
pub use apply::{Applied, apply};

/// Patreon's bodies are a few KiB; anything near this is not from Patreon.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// Whether `signature` (`X-Patreon-Signature`: hex HMAC-MD5 of `body` keyed with the webhook
/// secret) is right. Constant time; either hex case; anything malformed is simply wrong.
pub fn signature_is_valid(secret: &SecretString, body: &[u8], signature: Option<&str>) -> bool {
    let Some(signature) = signature.map(str::trim) else {
        return false;
    };
    // An MD5 MAC is 16 bytes, 32 hex digits; refuse anything else before decoding.
    if signature.len() != 32 {
        return false;
    }
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Md5>::new_from_slice(secret.expose_secret().as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// What recording a delivery came to. The sender learns none of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A new event for our campaign, to be applied.
    New(WebhookEventId),
    /// The same body was received before, however long ago: nothing more to do. Patreon's
    /// bodies carry the member's charge and pledge dates, so real news never repeats a body.
    Duplicate,
    /// A member of another campaign: recorded, never applied.
    OtherCampaign,
}

#[derive(Debug, thiserror::Error)]
#[error("the webhook body is not a Patreon member document")]
pub struct MalformedWebhook;

/// Records a delivery whose signature was verified. The body must be a member document.
pub async fn receive(
    db: &impl ConnectionTrait,
    body: &[u8],
    trigger: &str,
    our_campaign: &str,
    now: DateTime<Utc>,
) -> Result<std::result::Result<Received, MalformedWebhook>> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Ok(Err(MalformedWebhook));
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(Err(MalformedWebhook));
    };
    let Ok(member) = resources::parse_member_document(&json) else {
        return Ok(Err(MalformedWebhook));
    };
    let ours = member.campaign_id.as_deref() == Some(our_campaign);
    let delivery = NewDelivery {
        body_sha256: hex::encode(Sha256::digest(body)),
        // Bounded and printable: it is shown to admins, and never trusted.
        trigger: trigger
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(64)
            .collect(),
        member_id: Some(member.snapshot.member_id.clone()),
        patreon_user_id: member.patreon_user_id.clone(),
        campaign_id: member.campaign_id.clone(),
        body: text.to_owned(),
        ours,
        received_at: now,
    };
    let Some(id) = deliveries::record(db, delivery).await? else {
        return Ok(Ok(Received::Duplicate));
    };
    Ok(Ok(if ours {
        Received::New(id)
    } else {
        Received::OtherCampaign
    }))
}

/// The user a pending event is about, if they exist (for tests and admin views).
pub async fn user_of(
    db: &impl ConnectionTrait,
    event: &webhook_event::Model,
) -> Result<Option<user::Model>> {
    match &event.patreon_user_id {
        Some(id) => users::find_by_patreon_id(db, id).await,
        None => Ok(None),
    }
}

/// Our user id of the member event `id` is about, if they have signed in.
pub async fn member_of(db: &impl ConnectionTrait, id: WebhookEventId) -> Result<Option<UserId>> {
    let Some(event) = webhook_event::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    Ok(user_of(db, &event).await?.map(|u| u.id))
}
