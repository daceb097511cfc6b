//! The admin dashboard at `/admin`: who sees which page, the static files it needs, and the
//! CSRF guard on the admin API it drives with the cookie.

use reqwest::{Response, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::*;

const MEMBER: &str = "8701";
const ADMIN: &str = "8702";
const SIGN_IN_LINK: &str = r#"href="/api/auth/patreon/login?return_to=/admin""#;

async fn spawn() -> TestApp {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("ADMIN_PATREON_IDS", ADMIN),
    )
    .await;
    app.active_patron(MEMBER);
    app.active_patron(ADMIN);
    app
}

async fn get_with_cookie(app: &TestApp, path: &str, jwt: Option<&str>) -> Response {
    let mut request = app.client.get(app.url(path));
    if let Some(jwt) = jwt {
        request = request.header(header::COOKIE, format!("auth_token={jwt}"));
    }
    request.send().await.unwrap()
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// An HTML page the CSP lets run: every script comes from our origin, none is inline.
async fn html(response: Response) -> String {
    assert!(
        content_type(&response).starts_with("text/html"),
        "{response:?}"
    );
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "CSP: {csp}");
    assert!(!csp.contains("script-src"), "scripts stay on 'self': {csp}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    for script in body.split("<script").skip(1) {
        let tag = script.split('>').next().unwrap_or_default();
        assert!(
            tag.contains(r#"src="/admin/"#),
            "inline script: <script{tag}>"
        );
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_signed_out_shows_the_sign_in_page() {
    let app = spawn().await;

    for cookie in [None, Some("not-a-jwt"), Some("eyJhbGciOiJub25lIn0.e30.")] {
        let response = get_with_cookie(&app, "/admin", cookie).await;
        assert_eq!(response.status(), StatusCode::OK, "cookie {cookie:?}");
        let body = html(response).await;
        assert!(body.contains("Sign in with Patreon"), "{body}");
        assert!(body.contains(SIGN_IN_LINK), "{body}");
        assert!(!body.contains("members-table"), "dashboard leaked: {body}");
    }

    // The link starts a real sign-in that comes back to /admin.
    let (authorize, state_cookie) = app.start_login(Some("/admin")).await;
    let callback = app.consent(&authorize, ADMIN).await;
    let landing = location(&app.callback(&callback, &state_cookie).await);
    let landing = reqwest::Url::parse(&landing).unwrap();
    assert_eq!(landing.path(), "/admin");
    assert_eq!(
        query_param(landing.as_str(), "auth").as_deref(),
        Some("success")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_refuses_members_who_are_not_admins() {
    let app = spawn().await;
    let member = app.sign_in(MEMBER).await;

    let response = get_with_cookie(&app, "/admin", Some(&member.jwt)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = html(response).await;
    assert!(body.contains("Admins only"), "{body}");
    assert!(!body.contains("members-table"), "dashboard leaked: {body}");
    assert!(
        !body.contains("/admin/dashboard/"),
        "dashboard script leaked: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_shows_admins_the_dashboard_until_they_sign_out() {
    let app = spawn().await;
    let admin = app.sign_in(ADMIN).await;

    let response = get_with_cookie(&app, "/admin", Some(&admin.jwt)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = html(response).await;
    for part in [
        r#"id="members-table""#,
        r#"id="sweeps""#,
        r#"id="dead-jobs""#,
        r#"<script type="module" src="/admin/dashboard/main.js"></script>"#,
        r#"href="/admin/admin.css""#,
    ] {
        assert!(body.contains(part), "{part} missing");
    }

    // Signing out revokes the session: the same cookie now gets the sign-in page.
    let logout = app
        .same_site_post(
            "/api/auth/logout",
            &format!(
                "auth_token={}; auth_refresh={}",
                admin.jwt, admin.refresh_cookie
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let body = html(get_with_cookie(&app, "/admin", Some(&admin.jwt)).await).await;
    assert!(body.contains(SIGN_IN_LINK), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_assets_load_with_their_content_types() {
    let app = spawn().await;
    for (path, expected, marker) in [
        (
            "/admin/dashboard/api.js",
            "text/javascript; charset=utf-8",
            "X-Requested-With",
        ),
        (
            "/admin/sign-in.js",
            "text/javascript; charset=utf-8",
            "/api/auth/refresh",
        ),
        ("/admin/admin.css", "text/css; charset=utf-8", "@media"),
    ] {
        let response = get_with_cookie(&app, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(content_type(&response), expected, "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{path} lacks {marker}");
        // Data reaches the DOM as text only.
        assert!(!body.contains("innerHTML"), "{path} uses innerHTML");
        assert!(!body.contains("insertAdjacentHTML"), "{path}");
    }

    let post = app.client.post(app.url("/admin")).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.headers()["allow"], "GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_member_panel_offers_export_and_a_typed_erase() {
    let app = spawn().await;
    let admin = app.sign_in(ADMIN).await;

    // The controls are in the dashboard, which still passes the CSP checks of `html`.
    let body = html(get_with_cookie(&app, "/admin", Some(&admin.jwt)).await).await;
    for part in [
        r#"id="export-member""#,
        ">Export data (JSON)</button>",
        r#"id="erase-start""#,
        ">Erase member…</button>",
        r#"<form id="erase-form" class="erase" hidden>"#,
        r#"<label for="erase-confirm">"#,
        r#"<input type="text" id="erase-confirm""#,
        r#"id="erase-member" disabled>Erase permanently</button>"#,
        r#"id="notice" role="status""#,
    ] {
        assert!(body.contains(part), "{part} missing");
    }
    // No inline handlers (`onclick=`…): the CSP would block them.
    let inline_handler = body.split(" on").skip(1).any(|rest| {
        let name = rest.len()
            - rest
                .trim_start_matches(|c: char| c.is_ascii_lowercase())
                .len();
        name > 0 && rest[name..].starts_with('=')
    });
    assert!(!inline_handler, "inline event handler in the dashboard");

    let csp = get_with_cookie(&app, ENTRY_MODULE, None).await.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let script: String = dashboard_modules(&app).await.into_values().collect();
    for part in [
        // The export goes through the same `api()` helper (cookie, renewal) and is saved from a
        // Blob URL: a navigation to `blob:`, which `default-src 'self'` does not govern.
        r#"api("get", "/api/admin/members/{id}/export", { params: { id: m.id } })"#,
        "URL.createObjectURL(blob)",
        "download: name",
        "`member-${",
        // The erase is a DELETE through `api()`, which adds X-Requested-With to every non-GET.
        r#"api("delete", "/api/admin/members/{id}", "#,
        r#"if (verb !== "GET") headers["X-Requested-With"] = "XMLHttpRequest";"#,
        "typed !== loadedMember.patreonId",
        "A check is running, try again in a few seconds.",
    ] {
        assert!(script.contains(part), "the dashboard's modules lack {part}");
    }
    // Confirmation is typed in the page, never a browser dialog that headless tests can't answer.
    for blocked in ["confirm(", "prompt(", "alert("] {
        assert!(!script.contains(blocked), "the dashboard uses {blocked}");
    }
    // Downloads need no CSP loosening: no `navigate-to` and the fetches stay on our origin.
    assert!(!csp.contains("navigate-to"), "{csp}");
    assert!(!csp.contains("connect-src"), "{csp}");
    assert!(csp.contains("default-src 'self'"), "{csp}");
}

const ENTRY_MODULE: &str = "/admin/dashboard/main.js";

/// The modules a static `import … from "./x.js"` in `source` loads, as absolute paths.
fn static_imports(module_path: &str, source: &str) -> Vec<String> {
    let base = reqwest::Url::parse("http://dashboard.invalid")
        .and_then(|origin| origin.join(module_path))
        .unwrap();
    source
        .lines()
        .map(str::trim_start)
        // `import {` … `} from "./x.js";` spans lines; JSDoc `import("…")` types are not loads.
        .filter(|line| line.starts_with("import ") || line.starts_with("} from "))
        .filter_map(|line| line.rsplit('"').nth(1))
        .map(|specifier| base.join(specifier).unwrap().path().to_owned())
        .collect()
}

/// Every module the dashboard loads, from its `<script type="module">` through the imports,
/// by path: each one answered 200 with a JavaScript content type (browsers refuse a module
/// served as anything else).
async fn dashboard_modules(app: &TestApp) -> std::collections::BTreeMap<String, String> {
    let mut found = std::collections::BTreeMap::new();
    let mut pending = vec![ENTRY_MODULE.to_owned()];
    while let Some(path) = pending.pop() {
        if found.contains_key(&path) {
            continue;
        }
        let response = get_with_cookie(app, &path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path} is not served");
        assert_eq!(
            content_type(&response),
            "text/javascript; charset=utf-8",
            "{path}"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
        let source = response.text().await.unwrap();
        pending.extend(static_imports(&path, &source));
        found.insert(path, source);
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_page_serves_every_module_the_dashboard_imports() {
    let app = spawn().await;
    let admin = app.sign_in(ADMIN).await;
    let body = html(get_with_cookie(&app, "/admin", Some(&admin.jwt)).await).await;
    assert!(
        body.contains(&format!(r#"<script type="module" src="{ENTRY_MODULE}">"#)),
        "{body}"
    );

    let modules = dashboard_modules(&app).await;

    // Every file in the directory is loaded (none forgotten in admin_page.rs or left unused).
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/routes/admin_page/dashboard"
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".js"))
        .map(|name| format!("/admin/dashboard/{name}"))
        .collect();
    on_disk.sort();
    assert_eq!(modules.keys().cloned().collect::<Vec<_>>(), on_disk);
    for (path, source) in &modules {
        // tsc checks each module against the generated schema (scripts/test-frontend).
        assert!(source.starts_with("// @ts-check\n"), "{path}");
        // Data reaches the DOM as text only.
        assert!(!source.contains("innerHTML"), "{path} uses innerHTML");
        assert!(!source.contains("insertAdjacentHTML"), "{path}");
    }

    let missing = get_with_cookie(&app, "/admin/dashboard/nope.js", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn member_id(app: &TestApp, admin_jwt: &str, patreon_id: &str) -> i64 {
    let page: Value = app
        .client
        .get(app.url(&format!("/api/admin/members?search={patreon_id}")))
        .bearer_auth(admin_jwt)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["members"][0]["id"].as_i64().expect("member listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_posts_with_the_cookie_need_the_csrf_header_and_our_origin() {
    let app = spawn().await;
    app.sign_in(MEMBER).await;
    let admin = app.sign_in(ADMIN).await;
    let member = member_id(&app, &admin.jwt, MEMBER).await;
    let cookie = format!("auth_token={}", admin.jwt);
    let requests_before = app.count("job_requests").await;
    let posts = [
        (format!("/api/admin/members/{member}/recheck"), None),
        ("/api/admin/sweeps".to_owned(), None),
        (
            "/api/admin/dead-jobs/retry".to_owned(),
            Some(json!({"kind": "recheck", "requestId": "nope"})),
        ),
    ];

    for (path, body) in &posts {
        // No X-Requested-With: what a form on another site can send.
        let mut request = app
            .client
            .post(app.url(path))
            .header(header::COOKIE, &cookie);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["error"], "csrf_rejected", "{path}: {problem}");

        // The header, but from a foreign origin.
        let mut request = app
            .client
            .post(app.url(path))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "https://evil.example")
            .header("X-Requested-With", "XMLHttpRequest");
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} cross-site"
        );
    }
    assert_eq!(app.count("job_requests").await, requests_before);
    assert_eq!(app.count("sweeps").await, 0);

    // The dashboard's own requests (same origin, the header) go through.
    let own_origin = app.address.clone();
    let recheck = app
        .client
        .post(app.url(&posts[0].0))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &own_origin)
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    let status = recheck.status();
    let recheck_location = location(&recheck);
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        recheck.text().await.unwrap()
    );
    assert!(recheck_location.starts_with("/api/jobs/"));
    let sweep = app
        .client
        .post(app.url("/api/admin/sweeps"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, &own_origin)
        .header("X-Requested-With", "XMLHttpRequest")
        .send()
        .await
        .unwrap();
    assert_eq!(sweep.status(), StatusCode::ACCEPTED);
}
