//! The admin dashboard at `/admin`: plain HTML, CSS and JavaScript compiled into the binary, so
//! operators have nothing to build. Who sees what is decided here, on the server, with the same
//! authentication the API uses: signed-out visitors get a sign-in page, members who are not
//! admins a 403 page, admins the dashboard. The dashboard's data comes from `/api/admin/*`,
//! which checks the admin role (and CSRF on every POST) again on each call.
//!
//! The dashboard's script is a set of ES modules (`admin_page/dashboard/*.js`, entry `main.js`)
//! served as written under `/admin/dashboard/`; `scripts/test-frontend` type-checks them against
//! the schema generated from `openapi.json` (`admin_page/tsconfig.json`).

use poem::Request;
use poem_openapi::{ApiResponse, OpenApi, param::Path, payload::Html, payload::PlainText};

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
    /// No dashboard module by that name.
    #[oai(status = 404)]
    NotFound,
}

#[derive(ApiResponse)]
enum Stylesheet {
    #[oai(status = 200, content_type = "text/css; charset=utf-8")]
    Ok(PlainText<&'static str>),
}

const DASHBOARD: &str = include_str!("admin_page/dashboard.html");
const SIGN_IN: &str = include_str!("admin_page/sign-in.html");
const FORBIDDEN: &str = include_str!("admin_page/forbidden.html");

/// Declares the dashboard's modules once: their paths and their sources, compiled in.
macro_rules! dashboard_modules {
    ($($file:literal),+ $(,)?) => {
        /// `(path, source)` of every dashboard module.
        const MODULES: [(&str, &str); [$($file),+].len()] = [$((
            concat!("/admin/dashboard/", $file),
            include_str!(concat!("admin_page/dashboard/", $file)),
        )),+];
    };
}

dashboard_modules!(
    "main.js",
    "api.js",
    "dom.js",
    "format.js",
    "members.js",
    "member-panel.js",
    "data-rights.js",
    "sweeps.js",
    "dead-jobs.js",
);

const PAGE_PATHS: [&str; 3] = ["/admin", "/admin/sign-in.js", "/admin/admin.css"];

/// The paths served here, for `Allow` on 405 answers and the metrics' route labels.
pub const PATHS: [&str; PAGE_PATHS.len() + MODULES.len()] = {
    let mut paths = [""; PAGE_PATHS.len() + MODULES.len()];
    let mut i = 0;
    while i < PAGE_PATHS.len() {
        paths[i] = PAGE_PATHS[i];
        i += 1;
    }
    let mut m = 0;
    while m < MODULES.len() {
        paths[i + m] = MODULES[m].0;
        m += 1;
    }
    paths
};

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

    /// A dashboard module; `import` needs a JavaScript content type, or the browser refuses it.
    #[oai(path = "/admin/dashboard/:file", method = "get", hidden)]
    async fn dashboard_module(&self, file: Path<String>) -> Script {
        let path = format!("/admin/dashboard/{}", file.0);
        MODULES
            .iter()
            .find(|(served_at, _)| *served_at == path)
            .map_or(Script::NotFound, |(_, source)| {
                Script::Ok(PlainText(source))
            })
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
