//! Users as Patreon knows them: created or updated on every sign-in, keyed by Patreon id only.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel,
    QueryFilter,
};
use secrecy::SecretString;

use crate::PatreonUserId;
use crate::Result;
use crate::infra::crypto::{TokenCipher, token_aad};
use crate::members::membership::{self, AccessDecision, MembershipPolicy};
use crate::members::membership_checks::{self, CheckOutcome, CheckRecord, CheckTrigger};
use crate::patreon::{Identity, TokenGrant};

pub const ACCESS_TOKEN_COLUMN: &str = "access_token";
pub const REFRESH_TOKEN_COLUMN: &str = "refresh_token";

pub async fn find_by_patreon_id(
    db: &impl ConnectionTrait,
    patreon_id: &PatreonUserId,
) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::PatreonId.eq(patreon_id))
        .one(db)
        .await?)
}

/// Encrypts a token pair for `patreon_id`'s row; each ciphertext is bound to its row and column.
pub fn encrypt_tokens(
    cipher: &TokenCipher,
    patreon_id: &PatreonUserId,
    access: &SecretString,
    refresh: &SecretString,
) -> Result<(String, String)> {
    Ok((
        cipher.encrypt(access, &token_aad(patreon_id, ACCESS_TOKEN_COLUMN))?,
        cipher.encrypt(refresh, &token_aad(patreon_id, REFRESH_TOKEN_COLUMN))?,
    ))
}

/// Applies what Patreon says (profile, membership) and the rule's decision to a row. The caller
/// stamps when, if at all, this counts as a check.
pub(crate) fn apply_identity(
    row: &mut user::ActiveModel,
    identity: &Identity,
    decision: AccessDecision,
) {
    let m = identity.membership.as_ref();
    row.email = Set(identity.email.clone());
    row.full_name = Set(identity.full_name.clone());
    row.avatar_url = Set(identity.image_url.clone());
    row.patreon_member_id = Set(m.map(|m| m.member_id.clone()));
    row.patron_status = Set(m
        .and_then(|m| m.patron_status)
        .map(|s| patron_status_str(s).to_owned()));
    row.last_charge_status = Set(m
        .and_then(|m| m.last_charge_status.as_ref())
        .map(charge_status_str));
    row.last_charge_date = Set(m.and_then(|m| m.last_charge_date));
    row.pledge_started_at = Set(m.and_then(|m| m.pledge_started_at));
    row.entitled_amount_cents = Set(m.map_or(0, |m| m.entitled_amount_cents));
    row.tier_title = Set(m.and_then(|m| m.tier_title()).map(str::to_owned));
    row.membership_active = Set(decision.granted);
}

fn patron_status_str(s: membership::PatronStatus) -> &'static str {
    match s {
        membership::PatronStatus::Active => "active_patron",
        membership::PatronStatus::Declined => "declined_patron",
        membership::PatronStatus::Former => "former_patron",
    }
}

fn charge_status_str(s: &membership::ChargeStatus) -> String {
    use membership::ChargeStatus as C;
    match s {
        C::Paid => "Paid",
        C::Pending => "Pending",
        C::Declined => "Declined",
        C::Deleted => "Deleted",
        C::Refunded => "Refunded",
        C::RefundedByPatreon => "Refunded by Patreon",
        C::PartiallyRefunded => "Partially Refunded",
        C::Fraud => "Fraud",
        C::FreeTrial => "Free Trial",
        C::Other(other) => other,
    }
    .chars()
    .take(64)
    .collect()
}

/// Creates or updates the user behind a completed Patreon sign-in, stores the new token pair
/// encrypted, and decides membership. Matched by Patreon id, never by email.
pub async fn record_sign_in(
    db: &sea_orm::DatabaseConnection,
    cipher: &TokenCipher,
    policy: &MembershipPolicy,
    identity: &Identity,
    grant: &TokenGrant,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let txn = crate::infra::db::begin_write(db).await?;
    let existing = find_by_patreon_id(&txn, &identity.patreon_id).await?;
    let previously_granted = existing
        .as_ref()
        .is_some_and(crate::members::listing::granted_at_last_check);
    let decision = membership::decide(
        identity.membership.as_ref(),
        previously_granted,
        policy,
        now,
    );
    let (access, refresh) = encrypt_tokens(
        cipher,
        &identity.patreon_id,
        &grant.access_token,
        &grant.refresh_token,
    )?;
    let expires_at =
        now + chrono::Duration::from_std(grant.expires_in).unwrap_or(chrono::Duration::zero());

    let mut row = match &existing {
        Some(u) => u.clone().into_active_model(),
        None => user::ActiveModel {
            patreon_id: Set(identity.patreon_id.clone()),
            token_version: Set(0),
            created_at: Set(now),
            ..Default::default()
        },
    };
    apply_identity(&mut row, identity, decision);
    row.last_checked = Set(Some(now));
    row.updated_at = Set(now);
    row.access_token = Set(Some(access));
    row.refresh_token = Set(Some(refresh));
    row.token_expires_at = Set(Some(expires_at));
    row.token_version = Set(existing.as_ref().map_or(0, |u| u.token_version + 1));
    row.token_refresh_lease_until = Set(None);
    row.needs_relogin = Set(false);
    let saved = match &existing {
        Some(_) => row.update(&txn).await?,
        None => row.insert(&txn).await?,
    };
    let outcome = match membership_checks::changed(existing.as_ref(), &saved) {
        true => CheckOutcome::Changed,
        false => CheckOutcome::Verified,
    };
    let audit = CheckRecord {
        user_id: saved.id,
        before: existing.as_ref(),
        after: Some(&saved),
        trigger: CheckTrigger::SignIn,
        outcome,
        reason: Some(decision.reason),
        error: None,
        at: now,
    };
    membership_checks::record_decision(&txn, audit, decision.end_sessions).await?;
    txn.commit().await?;
    tracing::info!(user_id = i64::from(saved.id), granted = decision.granted, reason = ?decision.reason, "membership decided at sign-in");
    Ok(saved)
}
