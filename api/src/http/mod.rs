//! Middleware and HTTP helpers shared by every route.

pub mod access_log;
pub mod body_limit;
pub mod client_ip;
pub mod cookies;
pub mod errors;
pub mod headers;
pub mod metrics;
pub mod optional_json;
pub mod rate_limit;

use std::sync::Arc;

use domain::infra::config::Settings;
use poem::{
    Endpoint, Middleware, Request, Result,
    http::{Method, header},
    middleware::{Cors, CorsEndpoint},
};

/// Credentialed cross-origin calls only from the configured frontend origins; never an echo.
/// Same-origin requests (the api's own pages: `/admin`, the demo page) skip CORS, which does not
/// apply to them: browsers send `Origin` on a same-origin POST, and poem's `Cors` would refuse it
/// whenever the api's own origin is not `FRONTEND_URL`. The CSRF guard still checks them.
pub fn cors(settings: &Settings) -> SameOriginOrCors {
    SameOriginOrCors(cors_for_frontends(settings))
}

fn cors_for_frontends(settings: &Settings) -> Cors {
    Cors::new()
        .allow_origins(settings.allowed_origins.iter().map(String::as_str))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(["authorization", "content-type", "x-requested-with"])
        .max_age(600)
}

pub struct SameOriginOrCors(Cors);

impl<E: Endpoint> Middleware<E> for SameOriginOrCors {
    type Output = SameOriginOrCorsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        let ep = Arc::new(ep);
        SameOriginOrCorsEndpoint {
            plain: ep.clone(),
            cors: self.0.transform(ep),
        }
    }
}

pub struct SameOriginOrCorsEndpoint<E> {
    plain: Arc<E>,
    cors: CorsEndpoint<Arc<E>>,
}

impl<E: Endpoint> Endpoint for SameOriginOrCorsEndpoint<E> {
    type Output = poem::Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let same_origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|origin| is_own_origin(&req, origin));
        if same_origin && req.method() != Method::OPTIONS {
            self.plain
                .call(req)
                .await
                .map(poem::IntoResponse::into_response)
        } else {
            self.cors
                .call(req)
                .await
                .map(poem::IntoResponse::into_response)
        }
    }
}

/// Whether `origin` is the host the request was sent to (a same-origin request, e.g. from the
/// admin dashboard served by this api). The scheme is not compared: behind a proxy that ends TLS
/// the api sees plain HTTP for an `https://` page.
pub fn is_own_origin(req: &Request, origin: &str) -> bool {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        })
}
