//! The HTML pages of `/oauth2/authorize`: the account chooser and the error page. Self-contained
//! (no external resources).

use poem::Response;
use poem::http::StatusCode;

use crate::model::MockUser;

/// At most this many users are listed; the rest stay reachable with `&as=<id>`.
const MAX_LISTED: usize = 50;

pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         a.btn{{display:block;padding:.7rem 1rem;margin:.5rem 0;border:1px solid #ccc;border-radius:.4rem;\
         text-decoration:none;color:#222}}a.btn:hover{{background:#f4f4f4}}a.deny{{color:#a00}}\
         small{{color:#666}}</style></head><body>{body}</body></html>\n",
        title = escape(title),
    );
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .body(page)
}

/// 400 page for a malformed authorize request (Patreon shows an error, never redirects).
pub(crate) fn error_page(message: &str) -> Response {
    let body = format!(
        "<h1>Patreon (mock)</h1><p>This authorization request is invalid.</p><p><small>{}</small></p>",
        escape(message)
    );
    html(StatusCode::BAD_REQUEST, "Invalid request", &body)
}

/// "Continue as ..." links (the authorize URL + `&as=<id>`) and a "Deny" link.
pub(crate) fn chooser(
    authorize_url: &str,
    users: &[MockUser],
    total: usize,
    campaign_id: &str,
) -> Response {
    let mut body = String::from(
        "<h1>Patreon (mock)</h1><p>An application wants to log you in with Patreon. Pick an account:</p>",
    );
    for u in users.iter().take(MAX_LISTED) {
        let href = format!("{authorize_url}&as={}", u.id);
        body.push_str(&format!(
            "<a class=\"btn\" href=\"{}\">Continue as {} <small>({})</small></a>",
            escape(&href),
            escape(&u.full_name),
            escape(&u.describe(campaign_id)),
        ));
    }
    if total > MAX_LISTED {
        body.push_str(&format!(
            "<p><small>{} more users; add <code>&amp;as=&lt;user id&gt;</code> to the URL.</small></p>",
            total - MAX_LISTED
        ));
    }
    if users.is_empty() {
        body.push_str("<p><small>No users yet: add some with PUT /__mock/users/{id}.</small></p>");
    }
    let deny = format!("{authorize_url}&deny=1");
    body.push_str(&format!(
        "<a class=\"btn deny\" href=\"{}\">Deny</a>",
        escape(&deny)
    ));
    html(StatusCode::OK, "Log in with Patreon (mock)", &body)
}
