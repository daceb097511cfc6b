//! The OpenAPI description, generated from the handlers. `gen-openapi` writes it to the
//! repository root and a test fails when the committed copy is stale.

use poem_openapi::OpenApiService;

use crate::routes::{
    admin::AdminApi, admin_data_rights::AdminDataRightsApi, admin_members::AdminMembersApi,
    admin_page::AdminPage, admin_sweeps::AdminSweepsApi, auth::AuthApi, demo_page::DemoPage,
    health::HealthApi, jobs::JobsApi, refresh::RefreshApi, session::SessionApi,
};

pub type Apis = (
    AuthApi,
    SessionApi,
    RefreshApi,
    JobsApi,
    AdminApi,
    AdminMembersApi,
    AdminDataRightsApi,
    AdminSweepsApi,
    HealthApi,
    DemoPage,
    AdminPage,
);

pub const TITLE: &str = "patreon-gate";

/// Built without any state, so the spec can be generated offline.
pub fn spec_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            AuthApi,
            SessionApi,
            RefreshApi,
            JobsApi,
            AdminApi,
            AdminMembersApi,
            AdminDataRightsApi,
            AdminSweepsApi,
            HealthApi,
            DemoPage,
            AdminPage,
        ),
        TITLE,
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Sign in with Patreon, keep every member's status true, and tell the app who may enter. \
             Errors are `{\"error\": \"<stable code>\", \"message\": \"<text>\"}`.",
    )
    .server("/")
}

/// The spec as committed in `openapi.json` (pretty JSON, trailing newline).
pub fn spec_json() -> String {
    let mut json = spec_service().spec();
    json.push('\n');
    json
}
