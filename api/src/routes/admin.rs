//! Admin endpoints (members with the admin role, `domain::auth::admins`): jobs that gave up, and
//! retrying them.

use chrono::{DateTime, Utc};
use domain::work::dead_letters::{self, DeadJobRef};
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, Union, payload::Json};

use super::ApiTags;
use crate::{
    auth::AdminAuth,
    error::{ApiError, operation_errors},
    state::AppState,
};

pub struct AdminApi;

/// A member's or admin's recheck that gave up.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
struct DeadRecheck {
    request_id: String,
}

/// One member's check within a sweep that gave up.
#[derive(Object, Clone)]
#[oai(rename_all = "camelCase")]
struct DeadSweepCheck {
    sweep_id: i64,
    user_id: i64,
}

/// Which dead job.
#[derive(Union, Clone)]
#[oai(discriminator_name = "kind", one_of)]
enum DeadJobId {
    #[oai(mapping = "recheck")]
    Recheck(DeadRecheck),
    #[oai(mapping = "sweep")]
    Sweep(DeadSweepCheck),
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct DeadJob {
    job: DeadJobId,
    user_id: i64,
    patreon_id: Option<String>,
    /// The last error, e.g. `unavailable` or `rate_limited`.
    error: Option<String>,
    attempts: i32,
    failed_at: Option<DateTime<Utc>>,
}

impl From<DeadJobRef> for DeadJobId {
    fn from(r: DeadJobRef) -> Self {
        match r {
            DeadJobRef::Recheck { request_id } => Self::Recheck(DeadRecheck {
                request_id: request_id.into(),
            }),
            DeadJobRef::SweepItem { sweep_id, user_id } => Self::Sweep(DeadSweepCheck {
                sweep_id: sweep_id.into(),
                user_id: user_id.into(),
            }),
        }
    }
}

impl From<DeadJobId> for DeadJobRef {
    fn from(id: DeadJobId) -> Self {
        match id {
            DeadJobId::Recheck(r) => Self::Recheck {
                request_id: r.request_id.into(),
            },
            DeadJobId::Sweep(s) => Self::SweepItem {
                sweep_id: s.sweep_id.into(),
                user_id: s.user_id.into(),
            },
        }
    }
}

#[derive(ApiResponse)]
enum Retried {
    /// Queued again with a fresh attempt count.
    #[oai(status = 202)]
    Queued,
}

operation_errors!(ListDeadError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
});

operation_errors!(RetryDeadError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin, or a cookie request without `X-Requested-With` from our origin.",
    404 => NotFound: "No such dead job (it may have been retried already).",
    503 => Unavailable: "The job queue is not reachable.",
});

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminApi {
    /// Jobs that gave up, newest first (at most 100 of each kind).
    #[oai(path = "/api/admin/dead-jobs", method = "get")]
    async fn dead_jobs(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
    ) -> Result<Json<Vec<DeadJob>>, ListDeadError> {
        let dead = dead_letters::list(&state.db, 100).await?;
        Ok(Json(
            dead.into_iter()
                .map(|d| DeadJob {
                    job: d.job.into(),
                    user_id: d.user_id.into(),
                    patreon_id: d.patreon_id.map(String::from),
                    error: d.error,
                    attempts: d.attempts,
                    failed_at: d.failed_at,
                })
                .collect(),
        ))
    }

    /// Queue a dead job again.
    #[oai(path = "/api/admin/dead-jobs/retry", method = "post")]
    async fn retry(
        &self,
        admin: AdminAuth,
        state: Data<&AppState>,
        req: &Request,
        body: Json<DeadJobId>,
    ) -> Result<Retried, RetryDeadError> {
        admin.principal().require_same_site(req, &state)?;
        match dead_letters::retry(&state.db, &state.jobs, &body.0.clone().into()).await {
            Ok(true) => Ok(Retried::Queued),
            Ok(false) => {
                Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such dead job.").into())
            }
            Err(domain::Error::Queue(e)) => {
                tracing::error!(error = %e, "cannot queue a retry");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "The job queue is not reachable.",
                )
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
