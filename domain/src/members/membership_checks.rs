//! The audit trail: one row per membership check, whatever its outcome.

use chrono::{DateTime, Utc};
use entity::{membership_check, user};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::Result;
use crate::UserId;
use crate::members::membership::AccessReason;

/// Why a check ran and what it came to: stored in `membership_checks` (and a request's
/// trigger in `job_requests`), defined with the other stored states in `entity::states`.
pub use entity::states::{CheckOutcome, CheckTrigger};

/// One audit row. `before` is `None` for a member's first sign-in; `after` is `None` when
/// nothing was written (failed or skipped checks).
pub struct CheckRecord<'a> {
    pub user_id: UserId,
    pub before: Option<&'a user::Model>,
    pub after: Option<&'a user::Model>,
    pub trigger: CheckTrigger,
    pub outcome: CheckOutcome,
    pub reason: Option<AccessReason>,
    pub error: Option<&'a str>,
    pub at: DateTime<Utc>,
}

pub async fn record(db: &impl ConnectionTrait, r: CheckRecord<'_>) -> Result<()> {
    let row = membership_check::ActiveModel {
        user_id: Set(r.user_id),
        checked_at: Set(r.at),
        trigger: Set(r.trigger),
        outcome: Set(r.outcome),
        old_active: Set(r.before.map(|u| u.membership_active)),
        new_active: Set(r.after.map(|u| u.membership_active)),
        old_patron_status: Set(r.before.and_then(|u| u.patron_status.clone())),
        new_patron_status: Set(r.after.and_then(|u| u.patron_status.clone())),
        access_reason: Set(r.reason.map(|reason| reason.as_str().to_owned())),
        error: Set(r.error.map(str::to_owned)),
        ..Default::default()
    };
    membership_check::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    let labels = crate::infra::metrics::CheckLabels {
        trigger: r.trigger.as_str(),
        outcome: r.outcome.as_str(),
    };
    crate::infra::metrics::metrics()
        .membership_checks
        .get_or_create(&labels)
        .inc();
    Ok(())
}

/// The outcome of `user_id`'s latest successful check (`verified` or `changed`) for `trigger`
/// at or after `since`, if there was one.
pub async fn succeeded_since(
    db: &impl ConnectionTrait,
    user_id: UserId,
    trigger: CheckTrigger,
    since: DateTime<Utc>,
) -> Result<Option<CheckOutcome>> {
    let latest: Option<CheckOutcome> = membership_check::Entity::find()
        .select_only()
        .column(membership_check::Column::Outcome)
        .filter(membership_check::Column::UserId.eq(user_id))
        .filter(membership_check::Column::Trigger.eq(trigger))
        .filter(
            membership_check::Column::Outcome
                .is_in([CheckOutcome::Verified, CheckOutcome::Changed]),
        )
        .filter(membership_check::Column::CheckedAt.gte(since))
        .order_by_desc(membership_check::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(latest)
}

/// Whether a check that wrote `after` over `before` changed what matters to the member.
pub fn changed(before: Option<&user::Model>, after: &user::Model) -> bool {
    before.is_none_or(|b| {
        b.membership_active != after.membership_active
            || b.patron_status != after.patron_status
            || b.tier_title != after.tier_title
    })
}

/// What follows a membership decision, inside the caller's transaction: the audit row, every
/// session ended when the rule says so (fraud), and the api processes told to forget the member.
pub(crate) async fn record_decision(
    txn: &impl ConnectionTrait,
    audit: CheckRecord<'_>,
    end_sessions: bool,
) -> Result<()> {
    let (user_id, at) = (audit.user_id, audit.at);
    record(txn, audit).await?;
    if end_sessions {
        crate::auth::sessions::revoke_all_for_user(txn, user_id, at).await?;
    }
    crate::auth::auth_events::publish(txn, crate::auth::auth_events::AuthEvent::User(user_id)).await
}
