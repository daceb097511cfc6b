//! Verifying one member against Patreon: the use case behind the sweep, webhook rechecks, the
//! admin's "recheck now" and the member's own "recheck my status".
//!
//! Reads `/identity` with the member's own token (refreshed first when it expires soon, and once
//! more if Patreon refuses it), applies the membership rule, stores the outcome and writes an
//! audit row. A transient Patreon failure changes nothing and is returned for the caller to retry
//! later; a dead link flags the member (`needs_relogin`) and keeps their last known status.

use chrono::{DateTime, Duration, Utc};
use entity::user;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel,
};

use crate::UserId;
use crate::infra::crypto::TokenCipher;
use crate::members::membership::{self, AccessReason, MembershipPolicy};
use crate::members::membership_checks::{self, CheckOutcome, CheckRecord, CheckTrigger};
use crate::patreon::{Identity, PatreonClient, PatreonError};
use crate::{Error, Result, members::users, patreon::tokens};

/// How far ahead of expiry a check refreshes the member's Patreon token first.
pub const REFRESH_AHEAD: Duration = Duration::days(1);

/// What a verification came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// Patreon answered; the stored membership matches it now.
    Verified {
        changed: bool,
        granted: bool,
        reason: AccessReason,
    },
    /// The member's Patreon link is dead; their last known status stands until it goes stale.
    NeedsRelogin,
}

/// Everything a verification needs besides the database.
pub struct Verifier<'a> {
    pub patreon: &'a PatreonClient,
    pub cipher: &'a TokenCipher,
    pub policy: &'a MembershipPolicy,
    /// Refresh the member's Patreon token first when it expires within this long.
    pub refresh_within: Duration,
}

impl Verifier<'_> {
    pub async fn verify(
        &self,
        db: &DatabaseConnection,
        user_id: UserId,
        trigger: CheckTrigger,
    ) -> Result<Verification> {
        let before = user::Entity::find_by_id(user_id)
            .one(db)
            .await?
            .ok_or(Error::UnknownUser)?;
        let already_dead = before.needs_relogin || before.access_token.is_none();
        // What Patreon answers is its state at some instant after this one: a delivery received
        // later may be newer, so this is the check's time, not when it is stored.
        let read_at = Utc::now();
        let read = if already_dead {
            Err(Error::NeedsRelogin)
        } else {
            self.read_identity(db, &before).await
        };
        let identity = match read {
            Err(Error::NeedsRelogin) => match self.creator_view(&before).await {
                // The member's own link is dead; the creator token still sees their membership.
                Some(view) => view,
                None if already_dead => {
                    let skipped = CheckRecord {
                        user_id,
                        before: Some(&before),
                        after: None,
                        trigger,
                        outcome: CheckOutcome::Skipped,
                        reason: None,
                        error: Some("needs_relogin"),
                        at: Utc::now(),
                    };
                    membership_checks::record(db, skipped).await?;
                    return Ok(Verification::NeedsRelogin);
                }
                None => Err(Error::NeedsRelogin),
            },
            other => other,
        };
        match identity {
            Ok(identity) if identity.patreon_id == before.patreon_id => {
                record_state(db, self.policy, &before, &identity, trigger, Some(read_at)).await
            }
            Ok(_) => {
                self.fail(
                    db,
                    &before,
                    trigger,
                    Error::Patreon(PatreonError::BadResponse("identity of another user".into())),
                )
                .await
            }
            // The database failed, not the check: nothing to record (it may not even be
            // there); the caller tries again.
            Err(e @ Error::Database(_)) => Err(e),
            Err(e) => self.fail(db, &before, trigger, e).await,
        }
    }

    /// The member's state read with the creator token, for a member whose own link is dead;
    /// `None` when that is not possible (no creator token, or no known member id). The profile
    /// stays as last stored: only the membership is new.
    async fn creator_view(&self, u: &user::Model) -> Option<Result<Identity>> {
        let member_id = u.patreon_member_id.as_deref()?;
        if !self.patreon.has_creator_token() {
            return None;
        }
        let stored_profile = |membership| Identity {
            patreon_id: u.patreon_id.clone(),
            email: u.email.clone(),
            email_verified: false,
            full_name: u.full_name.clone(),
            image_url: u.avatar_url.clone(),
            membership,
        };
        Some(match self.patreon.member(member_id).await {
            // Patreon no longer has the member: no membership, so no access.
            Ok(None) => Ok(stored_profile(None)),
            Ok(Some(m)) if m.patreon_user_id.as_deref() == Some(u.patreon_id.as_str()) => {
                Ok(stored_profile(Some(m.snapshot)))
            }
            Ok(Some(_)) => Err(Error::Patreon(PatreonError::BadResponse(
                "member of another user".into(),
            ))),
            Err(e) => Err(e.into()),
        })
    }

    /// `/identity` with a fresh token; one refresh-and-retry when Patreon refuses the token.
    async fn read_identity(&self, db: &DatabaseConnection, u: &user::Model) -> Result<Identity> {
        tokens::refresh_if_expiring(db, self.patreon, self.cipher, u.id, self.refresh_within)
            .await?;
        let current = user::Entity::find_by_id(u.id)
            .one(db)
            .await?
            .ok_or(Error::UnknownUser)?;
        let token = tokens::access_token(self.cipher, &current)?;
        match self.patreon.identity(&token).await {
            Err(PatreonError::Unauthorized) => {
                tokens::refresh_refused(db, self.patreon, self.cipher, &current).await?;
                let refreshed = user::Entity::find_by_id(u.id)
                    .one(db)
                    .await?
                    .ok_or(Error::UnknownUser)?;
                let token = tokens::access_token(self.cipher, &refreshed)?;
                match self.patreon.identity(&token).await {
                    // A fresh token refused too: the link is dead. Never loop.
                    Err(PatreonError::Unauthorized) => {
                        tokens::mark_link_dead(db, &refreshed).await?;
                        Err(Error::NeedsRelogin)
                    }
                    other => Ok(other?),
                }
            }
            other => Ok(other?),
        }
    }

    /// Records a check that could not complete. The stored status is left as it was.
    async fn fail(
        &self,
        db: &DatabaseConnection,
        before: &user::Model,
        trigger: CheckTrigger,
        error: Error,
    ) -> Result<Verification> {
        let label = match &error {
            Error::NeedsRelogin => "needs_relogin",
            Error::Patreon(e) => e.kind(),
            _ => "internal",
        };
        let audit = CheckRecord {
            user_id: before.id,
            before: Some(before),
            after: None,
            trigger,
            outcome: CheckOutcome::Failed,
            reason: None,
            error: Some(label),
            at: Utc::now(),
        };
        membership_checks::record(db, audit).await?;
        tracing::warn!(
            user_id = i64::from(before.id),
            trigger = trigger.as_str(),
            error = label,
            "membership check failed; status kept"
        );
        match error {
            Error::NeedsRelogin => Ok(Verification::NeedsRelogin),
            other => Err(other),
        }
    }
}

/// Applies the membership rule to what Patreon says about the member (`identity`), stores the
/// outcome with its audit row, ends every session on fraud, and tells the api processes.
///
/// `read_at` is when Patreon's API was read, stored as the member's `last_checked`; `None` for a
/// webhook delivery, which is not ordered and so is no check (the recheck it asks for is).
pub(crate) async fn record_state(
    db: &DatabaseConnection,
    policy: &MembershipPolicy,
    before: &user::Model,
    identity: &Identity,
    trigger: CheckTrigger,
    read_at: Option<DateTime<Utc>>,
) -> Result<Verification> {
    let txn = crate::infra::db::begin_write(db).await?;
    let verification = record_state_in(&txn, policy, before, identity, trigger, read_at).await?;
    txn.commit().await?;
    Ok(verification)
}

/// [`record_state`] inside the caller's transaction, for callers that must commit more with it.
pub(crate) async fn record_state_in(
    txn: &DatabaseTransaction,
    policy: &MembershipPolicy,
    before: &user::Model,
    identity: &Identity,
    trigger: CheckTrigger,
    read_at: Option<DateTime<Utc>>,
) -> Result<Verification> {
    let now = Utc::now();
    let decision = membership::decide(
        identity.membership.as_ref(),
        crate::members::listing::granted_at_last_check(before),
        policy,
        now,
    );
    let mut row = before.clone().into_active_model();
    users::apply_identity(&mut row, identity, decision);
    if let Some(read_at) = read_at {
        row.last_checked = Set(Some(read_at));
    }
    row.updated_at = Set(now);
    let after = row.update(txn).await?;
    let changed = membership_checks::changed(Some(before), &after);
    let outcome = if changed {
        CheckOutcome::Changed
    } else {
        CheckOutcome::Verified
    };
    let audit = CheckRecord {
        user_id: before.id,
        before: Some(before),
        after: Some(&after),
        trigger,
        outcome,
        reason: Some(decision.reason),
        error: None,
        at: now,
    };
    membership_checks::record_decision(txn, audit, decision.end_sessions).await?;
    tracing::info!(
        user_id = i64::from(before.id),
        trigger = trigger.as_str(),
        granted = decision.granted,
        changed,
        reason = decision.reason.as_str(),
        "membership verified"
    );
    Ok(Verification::Verified {
        changed,
        granted: decision.granted,
        reason: decision.reason,
    })
}

#[cfg(test)]
mod tests;
