//! A member's data rights: everything stored about them, exported as one JSON document, and
//! erased in one go.
//!
//! What refers to a member: their `users` row (profile, membership, the encrypted Patreon
//! tokens), their sign-in `sessions` and the `handoff_codes` of those sessions, the
//! `membership_checks` audit trail, their rechecks (`job_requests`), their `sweep_items`, the
//! `webhook_events` Patreon sent about them (matched by Patreon user id or member id: the bodies
//! hold their name and email), and the check lease `verify:{user_id}`. Rechecks an admin asked
//! for *other* members name the admin in `requested_by`. Pending sign-ins (`oauth_states`) name
//! nobody, and nothing per member outlives a minute in Redis.
//!
//! Choices made here:
//! - The export never holds a secret: no token ciphertexts (only whether Patreon tokens are
//!   stored and when the access token expires), no refresh-token or handoff-code hashes.
//! - Erasure is one transaction that first takes the member's check lease, so it never runs
//!   alongside a check or a webhook delivery of that member (it fails with
//!   [`Error::MemberBusy`](crate::Error::MemberBusy) instead, changing nothing). The lease row
//!   goes with the rest. Rechecks the member asked for others are kept, with the requester
//!   forgotten. Each sweep the member was part of counts one member fewer, and closes if the
//!   member was the last one it owed.
//! - The encrypted Patreon tokens go with the row: nothing is sent to Patreon (revoking the app
//!   is the member's own action there).
//! - After the commit every api process is told to forget the member's sessions at once.
//! - Jobs still queued for the member find nothing and finish quietly; a later webhook about
//!   them waits for a sign-in, as for anyone who never signed in. Only signing in again (a new
//!   consent) creates a member again.

mod erase;
mod export;

pub use erase::{ErasureReport, erase, preview};
pub use export::{
    HandoffCodeRecord, MemberExport, MemberRecord, MembershipCheckRecord, RecheckRecord,
    SessionRecord, SweepItemRecord, WebhookEventRecord, export,
};

use entity::{
    handoff_code, job_request, membership_check, session, sweep_item, user, webhook_event,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    sea_query::{Query, SelectStatement},
};

use crate::UserId;
use crate::{Error, Result};

/// How one member is named across the tables.
struct Subject {
    user: user::Model,
}

impl Subject {
    async fn load(db: &impl ConnectionTrait, user_id: UserId) -> Result<Self> {
        let user = user::Entity::find_by_id(user_id)
            .one(db)
            .await?
            .ok_or(Error::UnknownUser)?;
        Ok(Self { user })
    }

    fn id(&self) -> UserId {
        self.user.id
    }

    fn sessions(&self) -> Condition {
        Condition::all().add(session::Column::UserId.eq(self.id()))
    }

    /// The codes of the member's sessions.
    fn handoff_codes(&self) -> Condition {
        let their_sessions: SelectStatement = Query::select()
            .column(session::Column::Id)
            .from(session::Entity)
            .and_where(session::Column::UserId.eq(self.id()))
            .to_owned();
        Condition::all().add(handoff_code::Column::SessionId.in_subquery(their_sessions))
    }

    fn checks(&self) -> Condition {
        Condition::all().add(membership_check::Column::UserId.eq(self.id()))
    }

    fn rechecks(&self) -> Condition {
        Condition::all().add(job_request::Column::UserId.eq(self.id()))
    }

    /// Rechecks of other members that this member (an admin) asked for.
    fn requested_for_others(&self) -> Condition {
        Condition::all()
            .add(job_request::Column::RequestedBy.eq(self.id()))
            .add(job_request::Column::UserId.ne(self.id()))
    }

    fn sweep_items(&self) -> Condition {
        Condition::all().add(sweep_item::Column::UserId.eq(self.id()))
    }

    /// Deliveries about the member: by Patreon user id, or by their member id when a body
    /// named no user.
    fn webhook_events(&self) -> Condition {
        let mut any =
            Condition::any().add(webhook_event::Column::PatreonUserId.eq(&self.user.patreon_id));
        if let Some(member_id) = &self.user.patreon_member_id {
            any = any.add(webhook_event::Column::MemberId.eq(member_id));
        }
        any
    }

    fn lease_key(&self) -> String {
        crate::work::leases::member_key(self.id())
    }
}
