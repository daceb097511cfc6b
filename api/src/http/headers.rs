//! Headers every response carries: no caching of anything personal, no referrer leaks, no framing.

use poem::{
    Endpoint, IntoResponse, Request, Response, Result, http::HeaderValue, http::StatusCode,
};

pub async fn security_headers<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let is_docs = req.uri().path().starts_with("/docs");
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
    if response.status() == StatusCode::UNAUTHORIZED
        && !response.headers().contains_key("WWW-Authenticate")
    {
        response
            .headers_mut()
            .insert("WWW-Authenticate", HeaderValue::from_static("Bearer"));
    }
    Ok(response)
}
