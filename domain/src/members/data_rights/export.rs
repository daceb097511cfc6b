//! The export: one JSON document with every row about the member, and no secrets.

use chrono::{DateTime, Utc};
use entity::{
    handoff_code, job_request, membership_check, session, sweep_item, user, webhook_event,
};
use sea_orm::{ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;

use super::Subject;
use crate::Result;
use crate::{JobRequestId, PatreonUserId, SweepId, UserId, WebhookEventId};

/// Bumped whenever a field changes meaning or goes away (adding one does not).
pub const FORMAT_VERSION: u32 = 1;

/// Everything stored about one member.
#[derive(Clone, Debug, Serialize)]
pub struct MemberExport {
    pub format_version: u32,
    pub exported_at: DateTime<Utc>,
    pub member: MemberRecord,
    pub sessions: Vec<SessionRecord>,
    pub handoff_codes: Vec<HandoffCodeRecord>,
    /// The audit trail: every check of their membership.
    pub membership_checks: Vec<MembershipCheckRecord>,
    /// Rechecks of their membership (asked by them or by an admin).
    pub rechecks: Vec<RecheckRecord>,
    /// Ids of rechecks of other members they asked for as an admin.
    pub rechecks_requested_for_others: Vec<JobRequestId>,
    pub sweep_items: Vec<SweepItemRecord>,
    pub webhook_events: Vec<WebhookEventRecord>,
}

/// The `users` row without its token ciphertexts.
#[derive(Clone, Debug, Serialize)]
pub struct MemberRecord {
    pub id: UserId,
    pub patreon_id: PatreonUserId,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub avatar_url: Option<String>,
    pub patreon_member_id: Option<String>,
    pub patron_status: Option<String>,
    pub last_charge_status: Option<String>,
    pub last_charge_date: Option<DateTime<Utc>>,
    pub pledge_started_at: Option<DateTime<Utc>>,
    pub entitled_amount_cents: i64,
    pub tier_title: Option<String>,
    pub membership_active: bool,
    pub last_checked: Option<DateTime<Utc>>,
    /// Whether Patreon tokens (encrypted) are stored for them.
    pub has_patreon_tokens: bool,
    pub patreon_token_expires_at: Option<DateTime<Utc>>,
    pub needs_relogin: bool,
    /// The admin role as granted in the database.
    pub is_admin: bool,
    /// When `worker import-profiles` created the row from the old app's profiles.
    pub imported_at: Option<DateTime<Utc>>,
    /// The old app's team flag.
    pub imported_team: bool,
    /// When the last webhook delivery applied to them was first received.
    pub delivery_received_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<user::Model> for MemberRecord {
    fn from(u: user::Model) -> Self {
        // Exhaustive on purpose: a new column fails to compile here until someone decides
        // whether it belongs in the export.
        let user::Model {
            id,
            patreon_id,
            email,
            full_name,
            avatar_url,
            patreon_member_id,
            patron_status,
            last_charge_status,
            last_charge_date,
            pledge_started_at,
            entitled_amount_cents,
            tier_title,
            membership_active,
            last_checked,
            access_token,
            refresh_token,
            token_expires_at,
            token_version: _,
            token_refresh_lease_until: _,
            needs_relogin,
            is_admin,
            imported_at,
            imported_team,
            delivery_received_at,
            created_at,
            updated_at,
        } = u;
        Self {
            has_patreon_tokens: access_token.is_some() || refresh_token.is_some(),
            patreon_token_expires_at: token_expires_at,
            id,
            patreon_id,
            email,
            full_name,
            avatar_url,
            patreon_member_id,
            patron_status,
            last_charge_status,
            last_charge_date,
            pledge_started_at,
            entitled_amount_cents,
            tier_title,
            membership_active,
            last_checked,
            needs_relogin,
            is_admin,
            imported_at,
            imported_team,
            delivery_received_at,
            created_at,
            updated_at,
        }
    }
}

/// A sign-in, without its refresh-token hashes.
#[derive(Clone, Debug, Serialize)]
pub struct SessionRecord {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub refresh_rotated_at: Option<DateTime<Utc>>,
}

impl From<session::Model> for SessionRecord {
    fn from(s: session::Model) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
            refresh_rotated_at: s.refresh_rotated_at,
        }
    }
}

/// A pending post-sign-in handoff, without its code hash.
#[derive(Clone, Debug, Serialize)]
pub struct HandoffCodeRecord {
    pub session_id: String,
    pub expires_at: DateTime<Utc>,
}

impl From<handoff_code::Model> for HandoffCodeRecord {
    fn from(h: handoff_code::Model) -> Self {
        Self {
            session_id: h.session_id,
            expires_at: h.expires_at,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MembershipCheckRecord {
    pub id: i64,
    pub checked_at: DateTime<Utc>,
    pub trigger: String,
    pub outcome: String,
    pub old_active: Option<bool>,
    pub new_active: Option<bool>,
    pub old_patron_status: Option<String>,
    pub new_patron_status: Option<String>,
    pub access_reason: Option<String>,
    pub error: Option<String>,
}

impl From<membership_check::Model> for MembershipCheckRecord {
    fn from(c: membership_check::Model) -> Self {
        Self {
            id: c.id,
            checked_at: c.checked_at,
            trigger: c.trigger.as_str().to_owned(),
            outcome: c.outcome.as_str().to_owned(),
            old_active: c.old_active,
            new_active: c.new_active,
            old_patron_status: c.old_patron_status,
            new_patron_status: c.new_patron_status,
            access_reason: c.access_reason,
            error: c.error,
        }
    }
}

/// A recheck; `trigger` says who asked (`member` or `admin`). The admin is not named.
#[derive(Clone, Debug, Serialize)]
pub struct RecheckRecord {
    pub id: JobRequestId,
    pub kind: String,
    pub trigger: String,
    pub status: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<job_request::Model> for RecheckRecord {
    fn from(r: job_request::Model) -> Self {
        Self {
            id: r.id,
            kind: r.kind.as_str().to_owned(),
            trigger: r.trigger.as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            result: r.result,
            error: r.error,
            attempts: r.attempts,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SweepItemRecord {
    pub sweep_id: SweepId,
    pub status: String,
    pub outcome: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub pushed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<sweep_item::Model> for SweepItemRecord {
    fn from(i: sweep_item::Model) -> Self {
        Self {
            sweep_id: i.sweep_id,
            status: i.status.as_str().to_owned(),
            outcome: i.outcome.map(|o| o.as_str().to_owned()),
            error: i.error,
            attempts: i.attempts,
            pushed_at: i.pushed_at,
            finished_at: i.finished_at,
        }
    }
}

/// A Patreon delivery about the member, with what it said about them.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookEventRecord {
    pub id: WebhookEventId,
    pub trigger: String,
    pub member_id: Option<String>,
    pub campaign_id: Option<String>,
    pub status: String,
    pub outcome: Option<String>,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    /// The member's attributes as Patreon sent them (name, email, patron status, charges…).
    pub member_attributes: Option<serde_json::Value>,
}

impl From<webhook_event::Model> for WebhookEventRecord {
    fn from(e: webhook_event::Model) -> Self {
        let member_attributes = serde_json::from_str::<serde_json::Value>(&e.body)
            .ok()
            .and_then(|body| body.get("data")?.get("attributes").cloned());
        Self {
            id: e.id,
            trigger: e.trigger,
            member_id: e.member_id,
            campaign_id: e.campaign_id,
            status: e.status.as_str().to_owned(),
            outcome: e.outcome.map(|o| o.as_str().to_owned()),
            received_at: e.received_at,
            processed_at: e.processed_at,
            member_attributes,
        }
    }
}

/// Everything stored about member `user_id`; `Error::UnknownUser` when there is no such member.
pub async fn export(db: &impl ConnectionTrait, user_id: UserId) -> Result<MemberExport> {
    let subject = Subject::load(db, user_id).await?;
    let sessions = session::Entity::find()
        .filter(subject.sessions())
        .order_by_asc(session::Column::CreatedAt)
        .all(db)
        .await?;
    let handoff_codes = handoff_code::Entity::find()
        .filter(subject.handoff_codes())
        .all(db)
        .await?;
    let checks = membership_check::Entity::find()
        .filter(subject.checks())
        .order_by_asc(membership_check::Column::Id)
        .all(db)
        .await?;
    let rechecks = job_request::Entity::find()
        .filter(subject.rechecks())
        .order_by_asc(job_request::Column::CreatedAt)
        .all(db)
        .await?;
    let for_others = job_request::Entity::find()
        .filter(subject.requested_for_others())
        .order_by_asc(job_request::Column::CreatedAt)
        .all(db)
        .await?;
    let sweep_items = sweep_item::Entity::find()
        .filter(subject.sweep_items())
        .order_by_asc(sweep_item::Column::SweepId)
        .all(db)
        .await?;
    let webhook_events = webhook_event::Entity::find()
        .filter(subject.webhook_events())
        .order_by_asc(webhook_event::Column::Id)
        .all(db)
        .await?;
    Ok(MemberExport {
        format_version: FORMAT_VERSION,
        exported_at: Utc::now(),
        member: subject.user.into(),
        sessions: sessions.into_iter().map(Into::into).collect(),
        handoff_codes: handoff_codes.into_iter().map(Into::into).collect(),
        membership_checks: checks.into_iter().map(Into::into).collect(),
        rechecks: rechecks.into_iter().map(Into::into).collect(),
        rechecks_requested_for_others: for_others.into_iter().map(|r| r.id).collect(),
        sweep_items: sweep_items.into_iter().map(Into::into).collect(),
        webhook_events: webhook_events.into_iter().map(Into::into).collect(),
    })
}
