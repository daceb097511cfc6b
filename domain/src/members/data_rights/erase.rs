//! Erasure: every row about the member, in one transaction, under their check lease.

use chrono::Duration;
use entity::{
    handoff_code, job_lease, job_request, membership_check, session, sweep, sweep_item, user,
    webhook_event,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use serde::Serialize;

use super::Subject;
use crate::auth::auth_events::{self, AuthEvent};
use crate::work::ledger::items;
use crate::{Error, Result, work::leases};
use crate::{SweepId, UserId};

/// Rows removed (or, from [`preview`], that would be), by table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    pub users: u64,
    pub sessions: u64,
    pub handoff_codes: u64,
    pub membership_checks: u64,
    pub job_requests: u64,
    pub sweep_items: u64,
    pub webhook_events: u64,
    /// Rechecks of other members that this member asked for as an admin: kept, with the
    /// requester forgotten.
    pub requests_for_others_unlinked: u64,
}

impl ErasureReport {
    /// `(table, rows)` in a fixed order, for people to read.
    pub fn rows(&self) -> [(&'static str, u64); 8] {
        [
            ("users", self.users),
            ("sessions", self.sessions),
            ("handoff_codes", self.handoff_codes),
            ("membership_checks", self.membership_checks),
            ("job_requests", self.job_requests),
            ("sweep_items", self.sweep_items),
            ("webhook_events", self.webhook_events),
            (
                "job_requests (requested for others, unlinked)",
                self.requests_for_others_unlinked,
            ),
        ]
    }
}

/// What [`erase`] would remove now, changing nothing.
pub async fn preview(db: &impl ConnectionTrait, user_id: UserId) -> Result<ErasureReport> {
    let s = Subject::load(db, user_id).await?;
    Ok(ErasureReport {
        users: 1,
        sessions: session::Entity::find()
            .filter(s.sessions())
            .count(db)
            .await?,
        handoff_codes: handoff_code::Entity::find()
            .filter(s.handoff_codes())
            .count(db)
            .await?,
        membership_checks: membership_check::Entity::find()
            .filter(s.checks())
            .count(db)
            .await?,
        job_requests: job_request::Entity::find()
            .filter(s.rechecks())
            .count(db)
            .await?,
        sweep_items: sweep_item::Entity::find()
            .filter(s.sweep_items())
            .count(db)
            .await?,
        webhook_events: webhook_event::Entity::find()
            .filter(s.webhook_events())
            .count(db)
            .await?,
        requests_for_others_unlinked: job_request::Entity::find()
            .filter(s.requested_for_others())
            .count(db)
            .await?,
    })
}

/// Erases member `user_id` (see the module doc of [`super`]). `Error::UnknownUser` when there is
/// no such member, `Error::MemberBusy` while a check or webhook delivery of theirs is running;
/// either way nothing changes.
pub async fn erase(db: &DatabaseConnection, user_id: UserId) -> Result<ErasureReport> {
    let txn = crate::infra::db::begin_write(db).await?;
    let s = Subject::load(&txn, user_id).await?;
    // Held until the commit removes it: no check of the member can start meanwhile, and none is
    // running now (it would write to rows that are about to go).
    if leases::try_acquire_in(&txn, &s.lease_key(), Duration::minutes(1))
        .await?
        .is_none()
    {
        return Err(Error::MemberBusy);
    }
    // Fields in deletion order, children first: the cascades hold on SQLite only while its
    // foreign keys are switched on.
    let report = ErasureReport {
        handoff_codes: handoff_code::Entity::delete_many()
            .filter(s.handoff_codes())
            .exec(&txn)
            .await?
            .rows_affected,
        sessions: session::Entity::delete_many()
            .filter(s.sessions())
            .exec(&txn)
            .await?
            .rows_affected,
        membership_checks: membership_check::Entity::delete_many()
            .filter(s.checks())
            .exec(&txn)
            .await?
            .rows_affected,
        job_requests: job_request::Entity::delete_many()
            .filter(s.rechecks())
            .exec(&txn)
            .await?
            .rows_affected,
        requests_for_others_unlinked: job_request::Entity::update_many()
            .col_expr(job_request::Column::RequestedBy, Expr::value(None::<i64>))
            .filter(s.requested_for_others())
            .exec(&txn)
            .await?
            .rows_affected,
        sweep_items: erase_sweep_items(&txn, &s).await?,
        webhook_events: webhook_event::Entity::delete_many()
            .filter(s.webhook_events())
            .exec(&txn)
            .await?
            .rows_affected,
        users: user::Entity::delete_by_id(user_id)
            .exec(&txn)
            .await?
            .rows_affected,
    };
    // The lease taken above, and any left by a worker that died: work markers, not reported.
    job_lease::Entity::delete_by_id(s.lease_key())
        .exec(&txn)
        .await?;
    txn.commit().await?;
    // After the commit, so no api process reloads the member before they are gone.
    auth_events::publish(db, AuthEvent::User(user_id)).await?;
    Ok(report)
}

/// Removes the member from every sweep: each counts one member fewer, and a running sweep that
/// owed only them is finished.
async fn erase_sweep_items(txn: &impl ConnectionTrait, s: &Subject) -> Result<u64> {
    let sweep_ids: Vec<SweepId> = sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::SweepId)
        .filter(s.sweep_items())
        .into_tuple()
        .all(txn)
        .await?;
    if sweep_ids.is_empty() {
        return Ok(0);
    }
    let removed = sweep_item::Entity::delete_many()
        .filter(s.sweep_items())
        .exec(txn)
        .await?
        .rows_affected;
    sweep::Entity::update_many()
        .col_expr(sweep::Column::Total, Expr::col(sweep::Column::Total).sub(1))
        .filter(sweep::Column::Id.is_in(sweep_ids.clone()))
        .filter(sweep::Column::Total.gt(0))
        .exec(txn)
        .await?;
    for sweep_id in sweep_ids {
        items::close_sweep_if_complete(txn, sweep_id).await?;
    }
    Ok(removed)
}
