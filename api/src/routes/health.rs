use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use domain::work::queue_identity::Role;

use super::ApiTags;
use crate::state::AppState;

pub struct HealthApi;

#[derive(Object)]
struct Status {
    /// `ok`, or what is wrong.
    status: String,
}

#[derive(ApiResponse)]
enum ReadyResponse {
    /// The database (and Redis, when configured) answer.
    #[oai(status = 200)]
    Ready(Json<Status>),
    /// The database or Redis does not answer.
    #[oai(status = 503)]
    NotReady(Json<Status>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Liveness: the process serves HTTP.
    #[oai(path = "/healthz", method = "get")]
    async fn healthz(&self) -> Json<Status> {
        Json(Status {
            status: "ok".into(),
        })
    }

    /// Readiness: the database is reachable, and Redis too when `REDIS_URL` is set.
    #[oai(path = "/readyz", method = "get")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let not_ready = |what: &str| {
            ReadyResponse::NotReady(Json(Status {
                status: format!("{what} unreachable"),
            }))
        };
        if let Err(e) = state.db.ping().await {
            tracing::warn!(error = %e, "readiness: database unreachable");
            return not_ready("database");
        }
        if let Some(redis) = &state.redis
            && let Err(e) = domain::infra::redis::ping(redis).await
        {
            tracing::warn!(error = %e, "readiness: Redis unreachable");
            return not_ready("redis");
        }
        // Not ready either while the running workers take jobs from another queue than ours.
        match domain::work::queue_identity::mismatch(&state.db, Role::Api, &state.jobs).await {
            Ok(None) => {}
            // Logged by the api's queue watch, not on every probe.
            Ok(Some(problem)) => return ReadyResponse::NotReady(Json(Status { status: problem })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: job queue unreachable");
                return not_ready("job queue");
            }
        }
        ReadyResponse::Ready(Json(Status {
            status: "ok".into(),
        }))
    }
}
