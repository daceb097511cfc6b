//! The worker's small HTTP side: `/metrics` for Prometheus (with `METRICS_TOKEN` only),
//! `/healthz` for liveness and `/readyz` (the database answers, with this release's schema, and
//! the api pushes to the queue this worker takes from) for orchestrators.

use domain::infra::metrics::{self, Scrape};
use poem::{
    EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    http::{StatusCode, header},
    listener::TcpListener,
    web::Data,
};

use crate::WorkerCtx;

#[handler]
async fn scrape(req: &Request, ctx: Data<&WorkerCtx>) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let settings = &ctx.settings;
    let scrape = metrics::scrape(
        settings.metrics_token.as_ref(),
        authorization,
        &ctx.db,
        &settings.verify_schedule,
    );
    match scrape.await {
        Scrape::Metrics(body) => Response::builder()
            .content_type(metrics::CONTENT_TYPE)
            .body(body),
        Scrape::Disabled => (
            StatusCode::FORBIDDEN,
            "/metrics is off: set METRICS_TOKEN to serve it",
        )
            .into_response(),
        Scrape::Unauthorized => StatusCode::UNAUTHORIZED.into_response(),
        Scrape::Unavailable => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(ctx: Data<&WorkerCtx>) -> Response {
    let unavailable = |why: String| (StatusCode::SERVICE_UNAVAILABLE, why).into_response();
    match domain::infra::db::schema_state(&ctx.db).await {
        Ok(domain::infra::db::SchemaState::Behind(_)) => {
            return unavailable("database not migrated yet".into());
        }
        Ok(_) => {}
        Err(_) => return unavailable("database unreachable".into()),
    }
    let role = domain::work::queue_identity::Role::Worker;
    match domain::work::queue_identity::mismatch(&ctx.db, role, &ctx.queue).await {
        Ok(None) => "ok".into_response(),
        Ok(Some(problem)) => unavailable(problem),
        Err(_) => unavailable("job queue unreachable".into()),
    }
}

/// Serves until the process ends; `WORKER_HTTP_PORT=0` turns it off.
pub async fn serve(ctx: WorkerCtx) -> anyhow::Result<()> {
    let port = ctx.settings.worker_http_port;
    if port == 0 {
        return Ok(());
    }
    let address = format!("{}:{port}", ctx.settings.bind_address);
    let app = Route::new()
        .at("/metrics", get(scrape))
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .data(ctx);
    tracing::info!(%address, "worker metrics and health");
    Server::new(TcpListener::bind(address)).run(app).await?;
    Ok(())
}
