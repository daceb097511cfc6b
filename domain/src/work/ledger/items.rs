//! What a sweep owes (`sweep_items`): one member's check, `pending` → `queued` → `done`, and the
//! sweep closed when its last item is done. The transitions are listed in the [ledger](super).

use chrono::{DateTime, Duration, Utc};
use entity::states::{CheckOutcome, CheckTrigger, ItemStatus};
use entity::{sweep, sweep_item, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};

use super::Transition;
use crate::members::membership_checks;
use crate::{Result, SweepId, UserId};

/// **owe_everyone**: one `pending` item for every member, in one statement (no member list is
/// held in memory). Call it in the transaction that created sweep `sweep_id`; returns how many.
pub async fn owe_everyone(db: &impl ConnectionTrait, sweep_id: SweepId) -> Result<u64> {
    let owed = Query::select()
        .expr(Expr::val(sweep_id))
        .column(user::Column::Id)
        .expr(Expr::val(ItemStatus::Pending.as_str()))
        .expr(Expr::val(0))
        .from(user::Entity)
        .to_owned();
    let fill = Query::insert()
        .into_table(sweep_item::Entity)
        .columns([
            sweep_item::Column::SweepId,
            sweep_item::Column::UserId,
            sweep_item::Column::Status,
            sweep_item::Column::Attempts,
        ])
        .select_from(owed)
        .map_err(|e| crate::Error::Database(sea_orm::DbErr::Custom(e.to_string())))?
        .to_owned();
    Ok(db.execute(&fill).await?.rows_affected())
}

/// The same item, by sweep and member.
fn item(sweep_id: SweepId, user_id: UserId) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(sweep_item::Column::SweepId.eq(sweep_id))
        .add(sweep_item::Column::UserId.eq(user_id))
}

/// **claim_pending**: moves up to `batch` `pending` items to `queued` (stamping the push time)
/// in one statement and returns the members it moved: only those are pushed, so two
/// reconcilers never push the same item twice.
pub async fn claim_pending(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    batch: u64,
) -> Result<Vec<UserId>> {
    let users: Vec<UserId> = sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::UserId)
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Pending))
        .order_by_asc(sweep_item::Column::UserId)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if users.is_empty() {
        return Ok(users);
    }
    Ok(sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(ItemStatus::Queued))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.is_in(users))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Pending))
        .exec_with_returning(db)
        .await?
        .into_iter()
        .map(|item| item.user_id)
        .collect())
}

/// **unclaim**: the queue refused the push of these `queued` items: `pending` again, so the
/// next round pushes them.
pub async fn unclaim(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    users: Vec<UserId>,
) -> Result<Transition> {
    let moved = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(ItemStatus::Pending))
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::UserId.is_in(users))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Queued))
        .exec(db)
        .await?;
    Ok(Transition::from_rows(moved.rows_affected))
}

/// Members whose item was queued longer than `older_than` ago without finishing: their job was
/// lost (a Redis restart, a worker killed before it recorded anything).
pub async fn stale(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    older_than: Duration,
) -> Result<Vec<UserId>> {
    Ok(sweep_item::Entity::find()
        .select_only()
        .column(sweep_item::Column::UserId)
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Queued))
        .filter(sweep_item::Column::PushedAt.lt(Utc::now() - older_than))
        .into_tuple()
        .all(db)
        .await?)
}

/// **reclaim**: a `queued` item is pushed again (re-stamped); unmoved if someone else did, or it
/// finished meanwhile.
pub async fn reclaim(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
) -> Result<Transition> {
    let claimed = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(ItemStatus::Queued))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .filter(item(sweep_id, user_id))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Queued))
        .exec(db)
        .await?;
    Ok(Transition::from_rows(claimed.rows_affected))
}

/// **start**: counts the attempt of a job about to run; `None` when the item is already done (a
/// duplicate delivery, or an earlier attempt whose check was recorded but not its item) or
/// gone. Call it under the member's check lease.
pub async fn start(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
) -> Result<Option<i32>> {
    let started = sweep_item::Entity::update_many()
        .col_expr(
            sweep_item::Column::Attempts,
            Expr::col(sweep_item::Column::Attempts).add(1),
        )
        .filter(item(sweep_id, user_id))
        .filter(sweep_item::Column::Status.ne(ItemStatus::Done))
        .exec(db)
        .await?;
    if started.rows_affected == 0 {
        return Ok(None);
    }
    let Some(item) = sweep_item::Entity::find_by_id((sweep_id, user_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    if item.attempts > 1
        && let Some(outcome) = checked_since_start(db, sweep_id, user_id).await?
    {
        // An earlier attempt checked the member, then lost the database before marking the
        // item done: that check is this sweep's, and Patreon is not asked twice.
        let _ = finish(db, sweep_id, user_id, outcome, None).await?;
        return Ok(None);
    }
    Ok(Some(item.attempts))
}

/// How `user_id`'s latest successful sweep check since `sweep_id` started came out, if any.
async fn checked_since_start(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
) -> Result<Option<CheckOutcome>> {
    let Some(sweep) = sweep::Entity::find_by_id(sweep_id).one(db).await? else {
        return Ok(None);
    };
    membership_checks::succeeded_since(db, user_id, CheckTrigger::Sweep, sweep.started_at).await
}

/// **retry_later**: a transient failure; the item stays queued (re-stamped) while its retry waits.
pub async fn retry_later(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    error: &str,
) -> Result<Transition> {
    requeue(db, sweep_id, user_id, error, false).await
}

/// **defer**: Patreon rate limited the deployment; the item stays queued (re-stamped) for its
/// deferred job, and the attempt that just ran is not counted, since nothing about the member
/// failed.
pub async fn defer(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    error: &str,
) -> Result<Transition> {
    requeue(db, sweep_id, user_id, error, true).await
}

/// Re-stamps a queued item for its waiting retry, keeping `error`; `give_back` uncounts the
/// attempt.
async fn requeue(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    error: &str,
    give_back: bool,
) -> Result<Transition> {
    let mut update = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Error, Expr::value(error))
        .col_expr(sweep_item::Column::PushedAt, Expr::value(Utc::now()))
        .filter(item(sweep_id, user_id))
        .filter(sweep_item::Column::Status.ne(ItemStatus::Done));
    if give_back {
        update = update
            .col_expr(
                sweep_item::Column::Attempts,
                Expr::col(sweep_item::Column::Attempts).sub(1),
            )
            .filter(sweep_item::Column::Attempts.gt(0));
    }
    let moved = update.exec(db).await?;
    Ok(Transition::from_rows(moved.rows_affected))
}

/// **finish** (and **give_up**, with [`CheckOutcome::Failed`]): records how the member's check
/// ended, and closes the sweep when it was the last one.
pub async fn finish(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
    outcome: CheckOutcome,
    error: Option<&str>,
) -> Result<Transition> {
    let finished = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(ItemStatus::Done))
        .col_expr(sweep_item::Column::Outcome, Expr::value(outcome))
        .col_expr(sweep_item::Column::Error, Expr::value(error))
        .col_expr(sweep_item::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(item(sweep_id, user_id))
        .filter(sweep_item::Column::Status.ne(ItemStatus::Done))
        .exec(db)
        .await?;
    close_sweep_if_complete(db, sweep_id).await?;
    Ok(Transition::from_rows(finished.rows_affected))
}

/// **retry**: an admin retries a dead item (`done`, outcome `failed`) with a fresh attempt
/// count: `pending` again, and its sweep is not finished any more.
pub async fn retry(
    db: &impl ConnectionTrait,
    sweep_id: SweepId,
    user_id: UserId,
) -> Result<Transition> {
    let reopened = sweep_item::Entity::update_many()
        .col_expr(sweep_item::Column::Status, Expr::value(ItemStatus::Pending))
        .col_expr(sweep_item::Column::Attempts, Expr::value(0))
        .col_expr(
            sweep_item::Column::Outcome,
            Expr::value(Option::<CheckOutcome>::None),
        )
        .col_expr(
            sweep_item::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(item(sweep_id, user_id))
        .filter(sweep_item::Column::Status.eq(ItemStatus::Done))
        .filter(sweep_item::Column::Outcome.eq(CheckOutcome::Failed))
        .exec(db)
        .await?;
    if reopened.rows_affected == 0 {
        return Ok(Transition::Unmoved);
    }
    sweep::Entity::update_many()
        .col_expr(
            sweep::Column::FinishedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(sweep::Column::Id.eq(sweep_id))
        .exec(db)
        .await?;
    Ok(Transition::Moved)
}

/// Marks the sweep finished once nothing is owed (also for a sweep of zero members).
pub async fn close_sweep_if_complete(db: &impl ConnectionTrait, sweep_id: SweepId) -> Result<bool> {
    let open = sweep_item::Entity::find()
        .filter(sweep_item::Column::SweepId.eq(sweep_id))
        .filter(sweep_item::Column::Status.ne(ItemStatus::Done))
        .count(db)
        .await?;
    if open > 0 {
        return Ok(false);
    }
    let closed = sweep::Entity::update_many()
        .col_expr(sweep::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(sweep::Column::Id.eq(sweep_id))
        .filter(sweep::Column::FinishedAt.is_null())
        .exec(db)
        .await?;
    if closed.rows_affected == 1 {
        tracing::info!(sweep_id = i64::from(sweep_id), "sweep finished");
    }
    Ok(true)
}
