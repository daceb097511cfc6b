//! Admin endpoints for members: the listing, one member's history, and "recheck now".

use chrono::{DateTime, Duration, Utc};
use domain::{
    UserId,
    members::listing::{self, MemberQuery, MemberSort, StatusFilter},
    members::membership_checks::CheckTrigger,
    work::ledger,
};
use entity::{membership_check, user};
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};

use super::{
    ApiTags,
    admin_data_rights::{self, EraseError, ErasureReportOut},
    jobs::{RecheckResponse, recheck_response},
};
use crate::{
    auth::AdminAuth,
    error::{ApiError, operation_errors},
    state::AppState,
};

pub struct AdminMembersApi;

/// Which members to list.
#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
enum MemberStatus {
    /// May enter paid content now (`isPaidMember`).
    Paying,
    NotPaying,
    /// Their Patreon authorization is dead.
    NeedsRelogin,
    /// Not verified within `STALE_AFTER_DAYS`.
    Stale,
}

#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "snake_case")]
enum MemberOrder {
    /// Least recently checked first.
    LastCheckedAsc,
    LastCheckedDesc,
    Name,
}

/// A member as the admin dashboard lists them.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct MemberSummary {
    id: i64,
    patreon_id: String,
    name: Option<String>,
    email: Option<String>,
    tier: Option<String>,
    /// Patreon's `patron_status` at the last check.
    patron_status: Option<String>,
    last_charge_status: Option<String>,
    membership_active: bool,
    is_paid_member: bool,
    is_admin: bool,
    needs_relogin: bool,
    last_checked: Option<DateTime<Utc>>,
    /// When `worker import-profiles` brought the member over from the old app. Until a check
    /// succeeds, their imported paid flag counts for at most `STALE_AFTER_DAYS` from then.
    imported_at: Option<DateTime<Utc>>,
    /// The old app's team flag, kept for reference: it grants nothing here.
    imported_team: bool,
}

impl MemberSummary {
    fn new(u: user::Model, state: &AppState, now: DateTime<Utc>) -> Self {
        Self {
            is_paid_member: listing::is_paid_member(&u, state.settings.stale_after, now),
            is_admin: domain::auth::admins::is_admin(&u, &state.settings.admin_patreon_ids),
            id: u.id.into(),
            patreon_id: u.patreon_id.into(),
            name: u.full_name,
            email: u.email,
            tier: u.tier_title,
            patron_status: u.patron_status,
            last_charge_status: u.last_charge_status,
            membership_active: u.membership_active,
            needs_relogin: u.needs_relogin,
            last_checked: u.last_checked,
            imported_at: u.imported_at,
            imported_team: u.imported_team,
        }
    }
}

#[derive(Object)]
struct MemberPage {
    /// Members matching the filters, over all pages.
    total: u64,
    members: Vec<MemberSummary>,
}

/// One membership check: when, why, and what changed.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct CheckEntry {
    id: i64,
    checked_at: DateTime<Utc>,
    /// `sign_in`, `sweep`, `webhook`, `admin` or `member`.
    trigger: String,
    /// `verified`, `changed`, `failed` or `skipped`.
    outcome: String,
    old_active: Option<bool>,
    new_active: Option<bool>,
    old_patron_status: Option<String>,
    new_patron_status: Option<String>,
    access_reason: Option<String>,
    error: Option<String>,
}

impl From<membership_check::Model> for CheckEntry {
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

#[derive(Object)]
struct MemberDetail {
    member: MemberSummary,
    /// The most recent checks, newest first (at most 100).
    checks: Vec<CheckEntry>,
}

operation_errors!(ListMembersError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
});

operation_errors!(MemberError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
    404 => NotFound: "No such member.",
});

operation_errors!(AdminRecheckError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin, or a cookie request without `X-Requested-With` from our origin.",
    404 => NotFound: "No such member.",
    503 => Unavailable: "The job queue is not reachable; nothing was queued.",
});

fn no_such_member() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such member.")
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminMembersApi {
    /// Members, filtered and sorted, one page at a time.
    #[oai(path = "/api/admin/members", method = "get")]
    #[allow(clippy::too_many_arguments)] // one per query parameter, as poem-openapi documents them
    async fn list(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
        /// Part of the name, email or Patreon id (any case).
        #[oai(validator(max_length = 100))]
        search: Query<Option<String>>,
        status: Query<Option<MemberStatus>>,
        sort: Query<Option<MemberOrder>>,
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "200"))
        )]
        limit: Query<u64>,
        #[oai(default, validator(maximum(value = "1000000")))] offset: Query<u64>,
    ) -> Result<Json<MemberPage>, ListMembersError> {
        let query = MemberQuery {
            search: search.0,
            status: status.0.map(|s| match s {
                MemberStatus::Paying => StatusFilter::Paying,
                MemberStatus::NotPaying => StatusFilter::NotPaying,
                MemberStatus::NeedsRelogin => StatusFilter::NeedsRelogin,
                MemberStatus::Stale => StatusFilter::Stale,
            }),
            sort: match sort.0 {
                None | Some(MemberOrder::LastCheckedAsc) => MemberSort::LastCheckedAsc,
                Some(MemberOrder::LastCheckedDesc) => MemberSort::LastCheckedDesc,
                Some(MemberOrder::Name) => MemberSort::Name,
            },
            limit: limit.0,
            offset: offset.0,
        };
        let now = Utc::now();
        let (total, page) =
            listing::list(&state.db, &query, state.settings.stale_after, now).await?;
        let members = page
            .into_iter()
            .map(|u| MemberSummary::new(u, &state, now))
            .collect();
        Ok(Json(MemberPage { total, members }))
    }

    /// One member and the history of their checks.
    #[oai(path = "/api/admin/members/:id", method = "get")]
    async fn detail(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
        id: Path<i64>,
    ) -> Result<Json<MemberDetail>, MemberError> {
        let member = listing::find(&state.db, UserId(id.0))
            .await?
            .ok_or_else(no_such_member)?;
        let checks = listing::history(&state.db, member.id, 100).await?;
        Ok(Json(MemberDetail {
            member: MemberSummary::new(member, &state, Utc::now()),
            checks: checks.into_iter().map(CheckEntry::from).collect(),
        }))
    }

    /// Check a member with Patreon now. Answers with the job to follow, or the one already
    /// queued for that member.
    #[oai(path = "/api/admin/members/:id/recheck", method = "post")]
    async fn recheck(
        &self,
        admin: AdminAuth,
        state: Data<&AppState>,
        req: &Request,
        id: Path<i64>,
    ) -> Result<RecheckResponse, AdminRecheckError> {
        let principal = admin.principal();
        principal.require_same_site(req, &state)?;
        let member = listing::find(&state.db, UserId(id.0))
            .await?
            .ok_or_else(no_such_member)?;
        let requested = ledger::request_recheck(
            &state.db,
            &state.jobs,
            member.id,
            CheckTrigger::Admin,
            Some(principal.user.id),
            Duration::zero(),
        )
        .await;
        recheck_response(requested, "cannot queue an admin recheck")
    }

    /// Erase a member: their row (with their Patreon tokens), sessions, checks, rechecks, sweep
    /// items and webhook deliveries, in one transaction. Their tokens stop working at once.
    #[oai(path = "/api/admin/members/:id", method = "delete")]
    async fn erase(
        &self,
        admin: AdminAuth,
        state: Data<&AppState>,
        req: &Request,
        id: Path<i64>,
    ) -> Result<Json<ErasureReportOut>, EraseError> {
        admin_data_rights::erase(&admin, &state, req, UserId(id.0)).await
    }
}

fn default_limit() -> u64 {
    50
}
