//! The admin dashboard at `/admin`: plain HTML, CSS and JavaScript compiled into the binary, so
//! operators have nothing to build. Who sees what is decided here, on the server, with the same
//! authentication the API uses: signed-out visitors get a sign-in page, members who are not
//! admins a 403 page, admins the dashboard. The dashboard's data comes from `/api/admin/*`,
//! which checks the admin role (and CSRF on every POST) again on each call.

use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, payload::Html, payload::PlainText};

use crate::{auth, error::ApiError, state::AppState};

pub struct AdminPage;

#[derive(ApiResponse)]
enum Page {
    /// The dashboard for admins, the sign-in page for everyone signed out.
    #[oai(status = 200)]
    Ok(Html<&'static str>),
    /// Signed in, but not an admin.
    #[oai(status = 403)]
    Forbidden(Html<&'static str>),
}

#[derive(ApiResponse)]
enum Script {
    #[oai(status = 200, content_type = "text/javascript; charset=utf-8")]
    Ok(PlainText<&'static str>),
}

#[derive(ApiResponse)]
enum Stylesheet {
    #[oai(status = 200, content_type = "text/css; charset=utf-8")]
    Ok(PlainText<&'static str>),
}

const DASHBOARD: &str = include_str!("admin_page/dashboard.html");
const SIGN_IN: &str = include_str!("admin_page/sign-in.html");
const FORBIDDEN: &str = include_str!("admin_page/forbidden.html");

/// The paths served here, for `Allow` on 405 answers.
pub const PATHS: [&str; 4] = [
    "/admin",
    "/admin/admin.js",
    "/admin/sign-in.js",
    "/admin/admin.css",
];

#[OpenApi]
impl AdminPage {
    #[oai(path = "/admin", method = "get", hidden)]
    async fn page(&self, req: &Request) -> poem::Result<Page> {
        let state = req.data::<AppState>().ok_or_else(ApiError::internal)?;
        match auth::authenticate(req).await {
            Ok(principal) if principal.is_admin(state) => Ok(Page::Ok(Html(DASHBOARD))),
            Ok(_) => Ok(Page::Forbidden(Html(FORBIDDEN))),
            // No credentials, a bad or expired token, a revoked session: sign in (again).
            Err(e) if e.status == poem::http::StatusCode::UNAUTHORIZED => {
                Ok(Page::Ok(Html(SIGN_IN)))
            }
            Err(e) => Err(e.into()),
        }
    }

    #[oai(path = "/admin/admin.js", method = "get", hidden)]
    async fn script(&self) -> Script {
        Script::Ok(PlainText(include_str!("admin_page/admin.js")))
    }

    #[oai(path = "/admin/sign-in.js", method = "get", hidden)]
    async fn sign_in_script(&self) -> Script {
        Script::Ok(PlainText(include_str!("admin_page/sign-in.js")))
    }

    #[oai(path = "/admin/admin.css", method = "get", hidden)]
    async fn stylesheet(&self) -> Stylesheet {
        Stylesheet::Ok(PlainText(include_str!("admin_page/admin.css")))
    }
}
