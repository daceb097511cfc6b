//! A minimal page for trying the service: "Sign in with Patreon", the profile, sign out. It uses
//! only the public API, like any frontend would.

use poem_openapi::{ApiResponse, OpenApi, payload::Html, payload::PlainText};

pub struct DemoPage;

#[derive(ApiResponse)]
enum Script {
    #[oai(status = 200, content_type = "text/javascript; charset=utf-8")]
    Ok(PlainText<&'static str>),
}

#[OpenApi]
impl DemoPage {
    #[oai(path = "/", method = "get", hidden)]
    async fn index(&self) -> Html<&'static str> {
        Html(include_str!("demo_page/index.html"))
    }

    #[oai(path = "/demo.js", method = "get", hidden)]
    async fn script(&self) -> Script {
        Script::Ok(PlainText(include_str!("demo_page/demo.js")))
    }
}
