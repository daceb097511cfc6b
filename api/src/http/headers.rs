//! Headers every response carries: no caching of anything personal, no referrer leaks, no framing.

use std::collections::HashMap;

use poem::{
    Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue, http::StatusCode,
};

use crate::state::AppState;

/// `Allow` values per path, for 405 answers (RFC 9110 requires the header).
pub struct AllowedMethods(HashMap<String, String>);

impl AllowedMethods {
    /// Reads the documented operations from the OpenAPI spec, plus the demo and admin pages.
    pub fn from_spec(spec_json: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec_json).unwrap_or_default();
        let mut map: HashMap<String, String> = HashMap::from([
            ("/".into(), "GET".into()),
            ("/demo.js".into(), "GET".into()),
        ]);
        for path in crate::routes::admin_page::PATHS {
            map.insert(path.into(), "GET".into());
        }
        if let Some(paths) = spec.get("paths").and_then(|p| p.as_object()) {
            for (path, ops) in paths {
                let methods: Vec<String> = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                map.insert(path.clone(), methods.join(", "));
            }
        }
        Self(map)
    }
}

pub async fn security_headers<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let is_docs = req.uri().path().starts_with("/docs");
    // Kept for the rare 405: cloning a `Uri` and an `Arc` costs no allocation.
    let uri = req.uri().clone();
    let allowed = req.data::<AppState>().map(|s| s.allowed_methods.clone());
    let mut response = next.call(req).await?.into_response();
    let headers = response.headers_mut();
    headers.insert("Cache-Control", HeaderValue::from_static("no-store"));
    headers.insert("Referrer-Policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "X-Content-Type-Options",
        HeaderValue::from_static("nosniff"),
    );
    if !is_docs {
        headers.insert("X-Frame-Options", HeaderValue::from_static("DENY"));
        headers.insert(
            "Content-Security-Policy",
            HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
        );
    }
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(value) = allowed
            .as_ref()
            .and_then(|a| a.0.get(uri.path()))
            .and_then(|a| HeaderValue::from_str(a).ok())
    {
        response.headers_mut().insert("Allow", value);
    }
    if response.status() == StatusCode::UNAUTHORIZED
        && !response.headers().contains_key("WWW-Authenticate")
    {
        response
            .headers_mut()
            .insert("WWW-Authenticate", HeaderValue::from_static("Bearer"));
    }
    Ok(response)
}
