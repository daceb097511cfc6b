//! Admin endpoints for a member's data rights: export everything stored about them, erase them.
//! `{id}` is the member's id as `GET /api/admin/members` lists it, like the other member routes.
//! `DELETE /api/admin/members/{id}` is declared next to that path's GET in `admin_members`
//! (poem-openapi writes a path once per API, so one path must live in one API) and runs [`erase`].

use domain::UserId;
use domain::members::data_rights::{self, ErasureReport};
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::ApiTags;
use crate::{
    auth::AdminAuth,
    error::{ApiError, operation_errors},
    state::AppState,
};

pub struct AdminDataRightsApi;

#[derive(ApiResponse)]
enum ExportResponse {
    /// Everything stored about the member, without secrets: `format_version`, `exported_at`,
    /// `member` (profile and membership; whether Patreon tokens are stored, never the tokens),
    /// `sessions`, `handoff_codes`, `membership_checks`, `rechecks`,
    /// `rechecks_requested_for_others`, `sweep_items` and `webhook_events` (with the member's
    /// attributes as Patreon sent them). Served as the attachment `member-<patreon id>.json`.
    #[oai(status = 200)]
    Exported(
        Json<serde_json::Value>,
        #[oai(header = "Content-Disposition")] String,
    ),
}

/// Rows removed, by table.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct ErasureReportOut {
    users: u64,
    sessions: u64,
    handoff_codes: u64,
    membership_checks: u64,
    job_requests: u64,
    sweep_items: u64,
    webhook_events: u64,
    /// Rechecks of other members this member asked for as an admin: kept, requester forgotten.
    requests_for_others_unlinked: u64,
}

impl From<ErasureReport> for ErasureReportOut {
    fn from(r: ErasureReport) -> Self {
        Self {
            users: r.users,
            sessions: r.sessions,
            handoff_codes: r.handoff_codes,
            membership_checks: r.membership_checks,
            job_requests: r.job_requests,
            sweep_items: r.sweep_items,
            webhook_events: r.webhook_events,
            requests_for_others_unlinked: r.requests_for_others_unlinked,
        }
    }
}

operation_errors!(ExportError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
    404 => NotFound: "No such member.",
});

operation_errors!(EraseError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin, or a cookie request without `X-Requested-With` from our origin.",
    404 => NotFound: "No such member; nothing changed.",
    409 => Busy: "A check of this member is under way; nothing changed. Try again in a few seconds.",
});

fn no_such_member() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such member.")
}

/// Unknown members are 404 and running checks 409; anything else is the usual mapping.
fn data_rights_error(e: domain::Error) -> ApiError {
    match e {
        domain::Error::UnknownUser => no_such_member(),
        domain::Error::MemberBusy => ApiError::new(
            StatusCode::CONFLICT,
            "member_busy",
            "A check of this member is under way. Try again in a few seconds.",
        ),
        other => other.into(),
    }
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminDataRightsApi {
    /// Everything stored about a member, as a JSON download.
    #[oai(path = "/api/admin/members/:id/export", method = "get")]
    async fn export(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
        id: Path<i64>,
    ) -> Result<ExportResponse, ExportError> {
        let export = data_rights::export(&state.db, UserId(id.0))
            .await
            .map_err(data_rights_error)?;
        let filename = format!(
            "attachment; filename=\"member-{}.json\"",
            export.member.patreon_id
        );
        let json = serde_json::to_value(&export).map_err(|e| {
            tracing::error!(error = %e, "cannot serialise a member export");
            ApiError::internal()
        })?;
        Ok(ExportResponse::Exported(Json(json), filename))
    }
}

/// `DELETE /api/admin/members/{id}`: erases the member in one transaction; their tokens stop
/// working at once. Logs who erased whom, by ids only.
pub(crate) async fn erase(
    admin: &AdminAuth,
    state: &AppState,
    req: &Request,
    id: UserId,
) -> Result<Json<ErasureReportOut>, EraseError> {
    let principal = admin.principal();
    principal.require_same_site(req, state)?;
    let member = domain::members::listing::find(&state.db, id)
        .await?
        .ok_or_else(no_such_member)?;
    let report = data_rights::erase(&state.db, member.id)
        .await
        .map_err(data_rights_error)?;
    // Other processes learn of it from the database's change signal; this one must not wait for
    // it: the erased member's tokens are refused from the next request.
    state
        .auth_cache
        .forget(&domain::auth::auth_events::AuthEvent::User(member.id));
    tracing::info!(
        admin_user_id = i64::from(principal.user.id),
        erased_patreon_id = %member.patreon_id,
        "member erased"
    );
    Ok(Json(report.into()))
}
