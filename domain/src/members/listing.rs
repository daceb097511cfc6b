//! Members as admins see them: one paid-access rule, a filtered and sorted listing, and the
//! history of a member's checks.

use chrono::{DateTime, Duration, Utc};
use entity::{membership_check, user};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

use crate::Result;
use crate::UserId;

/// May the member enter paid content now: the rule granted access at the last check, and that
/// check is no older than `stale_after`. A member imported from the old app and never checked
/// yet counts from their import instead, so an import grants at most `stale_after` of access.
pub fn is_paid_member(u: &user::Model, stale_after: Duration, now: DateTime<Utc>) -> bool {
    let status_since = u.last_checked.or(u.imported_at);
    u.membership_active && status_since.is_some_and(|at| now - at <= stale_after)
}

/// Whether the stored status is the rule's outcome at a check by Patreon, as the rule's billing
/// grace requires (`membership::decide`'s `previously_granted`). An imported paid flag that no
/// check confirmed is not.
pub fn granted_at_last_check(u: &user::Model) -> bool {
    u.membership_active && u.last_checked.is_some()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// [`is_paid_member`].
    Paying,
    /// Everyone else.
    NotPaying,
    /// Their Patreon link is dead.
    NeedsRelogin,
    /// Not checked successfully within `stale_after` (imported members never checked included).
    Stale,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemberSort {
    /// Longest unchecked first (never checked before all).
    #[default]
    LastCheckedAsc,
    LastCheckedDesc,
    Name,
}

#[derive(Clone, Debug, Default)]
pub struct MemberQuery {
    /// Part of the name, email or Patreon id, any case.
    pub search: Option<String>,
    pub status: Option<StatusFilter>,
    pub sort: MemberSort,
    pub limit: u64,
    pub offset: u64,
}

/// One page of members matching `q`, and how many match in all.
pub async fn list(
    db: &impl ConnectionTrait,
    q: &MemberQuery,
    stale_after: Duration,
    now: DateTime<Utc>,
) -> Result<(u64, Vec<user::Model>)> {
    let mut find = user::Entity::find();
    if let Some(term) = q.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", escape_like(&term.to_lowercase()));
        let matches = |col: user::Column| {
            Expr::expr(Func::lower(Expr::col(col)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        find = find.filter(
            Condition::any()
                .add(matches(user::Column::FullName))
                .add(matches(user::Column::Email))
                .add(matches(user::Column::PatreonId)),
        );
    }
    let fresh_since = now - stale_after;
    // The SQL form of `is_paid_member`.
    let fresh_import = Condition::all()
        .add(user::Column::LastChecked.is_null())
        .add(user::Column::ImportedAt.gte(fresh_since));
    let paying = Condition::all()
        .add(user::Column::MembershipActive.eq(true))
        .add(
            Condition::any()
                .add(user::Column::LastChecked.gte(fresh_since))
                .add(fresh_import),
        );
    let stale = Condition::any()
        .add(user::Column::LastChecked.is_null())
        .add(user::Column::LastChecked.lt(fresh_since));
    find = match q.status {
        Some(StatusFilter::Paying) => find.filter(paying),
        Some(StatusFilter::NotPaying) => find.filter(paying.not()),
        Some(StatusFilter::NeedsRelogin) => find.filter(user::Column::NeedsRelogin.eq(true)),
        Some(StatusFilter::Stale) => find.filter(stale),
        None => find,
    };
    let total = find.clone().count(db).await?;
    find = match q.sort {
        // NULLs (never checked) first in ascending order on both databases.
        MemberSort::LastCheckedAsc => find
            .order_by_asc(Expr::col(user::Column::LastChecked).is_null().not())
            .order_by_asc(user::Column::LastChecked),
        MemberSort::LastCheckedDesc => find
            .order_by_desc(Expr::col(user::Column::LastChecked).is_not_null())
            .order_by_desc(user::Column::LastChecked),
        MemberSort::Name => find.order_by_asc(user::Column::FullName),
    };
    let page = find
        .order_by_asc(user::Column::Id)
        .limit(q.limit)
        .offset(q.offset)
        .all(db)
        .await?;
    Ok((total, page))
}

fn escape_like(term: &str) -> String {
    term.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn find(db: &impl ConnectionTrait, user_id: UserId) -> Result<Option<user::Model>> {
    Ok(user::Entity::find_by_id(user_id).one(db).await?)
}

/// The member's most recent checks, newest first.
pub async fn history(
    db: &impl ConnectionTrait,
    user_id: UserId,
    limit: u64,
) -> Result<Vec<membership_check::Model>> {
    Ok(membership_check::Entity::find()
        .filter(membership_check::Column::UserId.eq(user_id))
        .order_by_desc(membership_check::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}
