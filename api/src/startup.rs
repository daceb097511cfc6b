//! Builds the application so `main` and the tests start exactly the same thing.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use domain::{auth::jwt::JwtKeys, infra::config::Settings};
use poem::{
    Endpoint, EndpointExt, Route, Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::{CatchPanic, CookieJarManager},
};

use crate::{auth_cache::AuthCache, http, openapi, routes, state::AppState};

pub struct Application {
    port: u16,
    acceptor: TcpAcceptor,
    state: AppState,
}

impl Application {
    /// Connects the database, applies migrations (unless `AUTO_MIGRATE=false`) and binds the port.
    /// `listener` lets tests bind port 0 first and read the real port back.
    pub async fn build(
        settings: Settings,
        listener: Option<std::net::TcpListener>,
    ) -> anyhow::Result<Self> {
        let db =
            domain::infra::db::connect(&settings.database_url, settings.database_max_connections)
                .await
                .context("cannot open the database at DATABASE_URL")?;
        if settings.auto_migrate {
            domain::infra::db::migrate(&db)
                .await
                .context("cannot apply database migrations")?;
        }
        let acceptor = match listener {
            Some(l) => {
                l.set_nonblocking(true)
                    .context("cannot make the given listener non-blocking")?;
                TcpAcceptor::from_std(l).context("cannot use the given listener")?
            }
            None => TcpListener::bind(format!("{}:{}", settings.bind_address, settings.port))
                .into_acceptor()
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {}:{}",
                        settings.bind_address, settings.port
                    )
                })?,
        };
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(SocketAddr::port))
            .context("listener has no TCP address")?;
        let redis = domain::infra::redis::connect_if_configured(settings.redis_url.as_ref())
            .await
            .context("cannot reach Redis at REDIS_URL")?;
        let jobs = domain::work::jobs::JobQueue::open(&settings, redis.as_ref())
            .await
            .context("cannot open the job queue")?;
        let shared_budget = redis
            .clone()
            .map(|r| (r, settings.redis_key_prefix.clone()));
        let patreon = domain::patreon::client_for(
            &settings.patreon,
            redis.as_ref(),
            &settings.redis_key_prefix,
            Some(&db),
        )
        .context("cannot build the Patreon client")?
        // A sign-in does not hang through a pause after a 429: it answers "try again later".
        .waiting_at_most(settings.patreon.timeout);
        let state = AppState {
            db,
            patreon,
            jwt: Arc::new(JwtKeys::new(&settings.jwt)),
            rate_limiter: Arc::new(http::rate_limit::ClientRateLimiter::new(
                settings.auth_rate_limit_per_minute,
                settings.webhook_rate_limit_per_minute,
                shared_budget,
            )),
            redis,
            jobs,
            auth_cache: Arc::new(AuthCache::new(settings.auth_cache_ttl)),
            allowed_methods: Arc::new(http::headers::AllowedMethods::from_spec(
                &openapi::spec_json(),
            )),
            settings: Arc::new(settings),
        };
        Ok(Self {
            port,
            acceptor,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then drains in-flight requests for up to 10 s.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeping = tokio::spawn(routes::housekeeping::run(self.state.clone()));
        let queue_watch = tokio::spawn(routes::housekeeping::watch_queue(self.state.clone()));
        let notifications = tokio::spawn(crate::auth_cache::follow_notifications(
            self.state.db.clone(),
            self.state.auth_cache.clone(),
        ));
        let app = app(self.state);
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown_signal(), Some(Duration::from_secs(10)))
            .await;
        housekeeping.abort();
        queue_watch.abort();
        notifications.abort();
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The whole HTTP surface with its middleware, in the order requests meet it.
pub fn app(state: AppState) -> impl Endpoint {
    let api = openapi::spec_service();
    // The spec is public (committed) and fetched by generated clients and gateways: always
    // served. The interactive docs only when asked for.
    let spec = api.spec_endpoint();
    let mut route = Route::new()
        .nest("/", api)
        .at("/openapi.json", poem::get(spec))
        .at("/metrics", poem::get(http::metrics::scrape))
        .at("/api/patreon/webhook", poem::post(routes::webhook::receive));
    if state.settings.api_docs {
        route = route.nest("/docs", openapi::spec_service().swagger_ui());
    }
    route
        // Errors become responses before the cookie jar is applied, so an error can still
        // clear or set cookies (e.g. a dead Patreon link signs the browser out).
        .catch_all_error(http::errors::render_error)
        .with(CookieJarManager::new())
        .with(http::cors(&state.settings))
        .around(http::rate_limit::limit_auth_routes)
        .around(http::body_limit::limit_body)
        .catch_all_error(http::errors::render_error)
        .around(http::headers::security_headers)
        .with(CatchPanic::new())
        .around(http::access_log::log_request)
        .around(http::metrics::observe)
        .data(state)
}
