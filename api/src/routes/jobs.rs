//! A member's "recheck my status" and the status of such jobs.

use chrono::{DateTime, Duration, Utc};
use domain::{
    JobRequestId,
    auth::auth_events::AuthEvent,
    members::membership_checks::CheckTrigger,
    work::ledger::{self, Requested, requests},
};
use entity::job_request;
use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::ApiTags;
use crate::{
    auth::MemberAuth,
    error::{ApiError, ErrorBody, operation_errors},
    state::AppState,
};

/// How soon after a finished recheck a member may ask again.
const RECHECK_COOLDOWN: Duration = Duration::seconds(60);

pub struct JobsApi;

/// A background job someone waits for.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct JobStatus {
    id: String,
    /// `verify_membership`.
    kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    status: String,
    /// What the job found: `paying_member`, `not_a_paying_member` or `needs_relogin`.
    result: Option<String>,
    /// Why it failed (or why the last attempt failed, while a retry waits), e.g. `unavailable`
    /// (Patreon) or `rate_limited`.
    error: Option<String>,
    /// Attempts started so far; transient Patreon failures are retried up to 5 times.
    attempts: i32,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<job_request::Model> for JobStatus {
    fn from(j: job_request::Model) -> Self {
        Self {
            id: j.id.into(),
            kind: j.kind.as_str().to_owned(),
            status: j.status.as_str().to_owned(),
            result: j.result,
            error: j.error,
            attempts: j.attempts,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub(crate) struct Accepted {
    job_id: String,
    status: String,
}

#[derive(ApiResponse)]
pub(crate) enum RecheckResponse {
    /// The recheck is queued (or one already was); follow `Location` for its status.
    #[oai(status = 202)]
    Accepted(Json<Accepted>, #[oai(header = "Location")] String),
    /// A recheck finished less than a minute ago; try again after `Retry-After` seconds.
    #[oai(status = 429)]
    TooSoon(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

operation_errors!(RecheckError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Cookie-authenticated request without `X-Requested-With` or from a foreign `Origin`.",
    503 => Unavailable: "The job queue is not reachable; nothing was queued.",
});

operation_errors!(JobStatusError {
    401 => Unauthorized: "Not signed in.",
    404 => NotFound: "No such job, or not yours.",
});

pub(crate) fn accepted(row: job_request::Model) -> RecheckResponse {
    let location = format!("/api/jobs/{}", row.id);
    RecheckResponse::Accepted(
        Json(Accepted {
            job_id: row.id.into(),
            status: row.status.as_str().to_owned(),
        }),
        location,
    )
}

#[OpenApi(tag = "ApiTags::Session")]
impl JobsApi {
    /// Ask for your membership to be checked with Patreon now. At most one recheck runs at a
    /// time per member, and a new one can start a minute after the last finished.
    #[oai(path = "/api/auth/recheck", method = "post")]
    async fn recheck(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: MemberAuth,
    ) -> Result<RecheckResponse, RecheckError> {
        let principal = auth.principal();
        principal.require_same_site(req, &state)?;
        let user_id = principal.user.id;
        let requested = ledger::request_recheck(
            &state.db,
            &state.jobs,
            user_id,
            CheckTrigger::Member,
            Some(user_id),
            RECHECK_COOLDOWN,
        )
        .await;
        recheck_response(requested, "cannot queue a recheck")
    }

    /// The status of a job you asked for (admins see every job).
    #[oai(path = "/api/jobs/:id", method = "get")]
    async fn job(
        &self,
        state: Data<&AppState>,
        auth: MemberAuth,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<Json<JobStatus>, JobStatusError> {
        let user = &auth.principal().user;
        let is_admin = domain::auth::admins::is_admin(user, &state.settings.admin_patreon_ids);
        match requests::find(&state.db, &JobRequestId::from(id.0)).await? {
            Some(job)
                if job.user_id == user.id || job.requested_by == Some(user.id) || is_admin =>
            {
                if job.finished_at.is_some() {
                    // Whoever polls a finished check reads the member next: make sure this
                    // process does not answer from its cache (a worker on SQLite cannot notify).
                    state.auth_cache.forget(&AuthEvent::User(job.user_id));
                }
                Ok(Json(job.into()))
            }
            _ => Err(ApiError::new(
                poem::http::StatusCode::NOT_FOUND,
                "not_found",
                "No such job.",
            )
            .into()),
        }
    }
}

/// The answer to a recheck asked for through [`ledger::request_recheck`] (by a member or an
/// admin): the request to follow, the cooldown left, or 503 when the queue refused the push.
pub(crate) fn recheck_response<E: From<ApiError> + From<domain::Error>>(
    requested: domain::Result<Requested>,
    context: &str,
) -> Result<RecheckResponse, E> {
    match requested {
        Ok(Requested::New(row) | Requested::AlreadyOpen(row)) => Ok(accepted(row)),
        Ok(Requested::TooSoon(wait)) => Ok(too_soon(wait)),
        Err(domain::Error::Queue(e)) => {
            tracing::error!(error = %e, "{context}");
            Err(ApiError::new(
                poem::http::StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "The job queue is not reachable. Try again shortly.",
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn too_soon(wait: Duration) -> RecheckResponse {
    let seconds = wait.num_seconds().max(1).unsigned_abs();
    let body = ErrorBody {
        error: "recheck_too_soon".into(),
        message: format!("Your status was just checked. Try again in {seconds} seconds."),
    };
    RecheckResponse::TooSoon(Json(body), seconds)
}
