//! Admin endpoints for sweeps: the schedule, recent sweeps with their counts, and "run now".

use chrono::{DateTime, Utc};
use domain::SweepId;
use domain::work::sweeps::{self, ManualSweep};
use entity::states::SweepTrigger;
use entity::sweep;
use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};

use super::ApiTags;
use crate::{
    auth::AdminAuth,
    error::{ApiError, operation_errors},
    state::AppState,
};

pub struct AdminSweepsApi;

/// One sweep: every member checked once, and how it went so far.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct SweepSummary {
    id: i64,
    /// The schedule's tick (`2026-12-01T00:00:00Z`) or `manual-…`.
    tick: String,
    /// `schedule`, `manual` (CLI) or `admin`.
    trigger: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    /// Members owed a check.
    total: u64,
    /// Members accounted for so far.
    done: u64,
    verified: u64,
    changed: u64,
    failed: u64,
    /// Not checked: their Patreon link is dead and no other way to check them exists.
    skipped: u64,
}

async fn summary(state: &AppState, s: sweep::Model) -> domain::Result<SweepSummary> {
    let p = sweeps::progress(&state.db, s.id).await?;
    Ok(SweepSummary {
        id: s.id.into(),
        tick: s.tick,
        trigger: s.trigger.as_str().to_owned(),
        started_at: s.started_at,
        finished_at: s.finished_at,
        total: p.total,
        done: p.done,
        verified: p.verified,
        changed: p.changed,
        failed: p.failed,
        skipped: p.skipped,
    })
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
struct SweepOverview {
    /// `VERIFY_SCHEDULE` (cron, seconds first, UTC).
    schedule: String,
    next_run_at: Option<DateTime<Utc>>,
    /// The 20 most recent sweeps, newest first.
    sweeps: Vec<SweepSummary>,
}

#[derive(ApiResponse)]
enum SweepStarted {
    /// Started; follow `Location` for its progress.
    #[oai(status = 202)]
    Started(Json<SweepSummary>, #[oai(header = "Location")] String),
    /// A sweep is already running: this one. Only one runs at a time.
    #[oai(status = 409)]
    AlreadyRunning(Json<SweepSummary>, #[oai(header = "Location")] String),
}

operation_errors!(SweepsError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
});

operation_errors!(SweepError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin.",
    404 => NotFound: "No such sweep.",
});

operation_errors!(StartSweepError {
    401 => Unauthorized: "Not signed in.",
    403 => Forbidden: "Not an admin, or a cookie request without `X-Requested-With` from our origin.",
    503 => Unavailable: "The job queue is not reachable.",
});

fn location(id: SweepId) -> String {
    format!("/api/admin/sweeps/{id}")
}

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminSweepsApi {
    /// The schedule and the most recent sweeps with their counts.
    #[oai(path = "/api/admin/sweeps", method = "get")]
    async fn list(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
    ) -> Result<Json<SweepOverview>, SweepsError> {
        let mut recent = Vec::new();
        for s in sweeps::recent(&state.db, 20).await? {
            recent.push(summary(&state, s).await?);
        }
        let schedule = &state.settings.verify_schedule;
        Ok(Json(SweepOverview {
            schedule: schedule.expression().to_owned(),
            next_run_at: schedule.next_after(Utc::now()),
            sweeps: recent,
        }))
    }

    /// One sweep's progress.
    #[oai(path = "/api/admin/sweeps/:id", method = "get")]
    async fn one(
        &self,
        _admin: AdminAuth,
        state: Data<&AppState>,
        id: Path<i64>,
    ) -> Result<Json<SweepSummary>, SweepError> {
        let found = sweeps::find(&state.db, SweepId(id.0))
            .await?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such sweep."))?;
        Ok(Json(summary(&state, found).await?))
    }

    /// Sweep every member now (unless a sweep is running). The worker does the checks.
    #[oai(path = "/api/admin/sweeps", method = "post")]
    async fn start(
        &self,
        admin: AdminAuth,
        state: Data<&AppState>,
        req: &Request,
    ) -> Result<SweepStarted, StartSweepError> {
        admin.principal().require_same_site(req, &state)?;
        match sweeps::start_manual(&state.db, &state.jobs, SweepTrigger::Admin, Utc::now()).await {
            Ok(ManualSweep::Started(s)) => {
                let id = s.id;
                Ok(SweepStarted::Started(
                    Json(summary(&state, s).await?),
                    location(id),
                ))
            }
            Ok(ManualSweep::AlreadyRunning(s)) => {
                let id = s.id;
                Ok(SweepStarted::AlreadyRunning(
                    Json(summary(&state, s).await?),
                    location(id),
                ))
            }
            Err(domain::Error::Queue(e)) => {
                // The sweep is recorded; any worker's reconciler fans it out within a minute.
                tracing::error!(error = %e, "cannot queue a sweep's fan-out");
                Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_unavailable",
                    "The job queue is not reachable; the sweep will start when a worker finds it.",
                )
                .into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
