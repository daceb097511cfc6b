//! Every log line of the whole test binary, at TRACE, kept in memory so a test can prove that no
//! secret was ever logged (T39). `TEST_LOG=1` also prints them.

use std::{
    io::Write,
    sync::{Mutex, Once},
};

use tracing_subscriber::{EnvFilter, fmt::MakeWriter, prelude::*};

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static INIT: Once = Once::new();

struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        Capture
    }
}

pub fn capture() {
    INIT.call_once(|| {
        let print = std::env::var("TEST_LOG").is_ok();
        let registry = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(Capture)
                .with_filter(EnvFilter::new("trace")),
        );
        if print {
            registry
                .with(tracing_subscriber::fmt::layer().with_test_writer())
                .init();
        } else {
            registry.init();
        }
    });
}

/// Everything logged so far by any test in this binary.
pub fn all() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

mod secrets_never_logged {
    use domain::infra::crypto::token_aad;
    use secrecy::ExposeSecret;

    use crate::helpers::*;

    /// T39: a whole session's secrets never reach any log line at TRACE.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_token_code_state_or_secret_appears_in_the_logs() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        let id = app.active_patron("4101");
        let (authorize, state_cookie) = app.start_login(None).await;
        let state = query_param(&authorize, "state").unwrap();
        let callback = app.consent(&authorize, &id).await;
        let code = query_param(&callback, "code").unwrap();
        let response = app.callback(&callback, &state_cookie).await;
        let cookies = set_cookies(&response);
        let jwt = cookie_value(&cookies, "auth_token").unwrap();
        let refresh = cookie_value(&cookies, "auth_refresh").unwrap();
        let handoff = query_param(&location(&response), "handoff").unwrap();
        let renewed = app
            .same_site_post("/api/auth/refresh", &format!("auth_refresh={refresh}"))
            .send()
            .await
            .unwrap();
        let renewed_refresh = cookie_value(&set_cookies(&renewed), "auth_refresh").unwrap();
        let exchanged: serde_json::Value = app
            .client
            .post(app.url("/api/auth/token"))
            .json(&serde_json::json!({ "handoff": handoff }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = exchanged["token"].as_str().unwrap().to_owned();
        let bearer_refresh = exchanged["refreshToken"].as_str().unwrap().to_owned();
        app.me_bearer(&bearer).await;
        app.me_bearer("not-a-token").await;
        let bearer_renewed: serde_json::Value = app
            .client
            .post(app.url("/api/auth/refresh"))
            .json(&serde_json::json!({ "refreshToken": bearer_refresh }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer_renewed_refresh = bearer_renewed["refreshToken"].as_str().unwrap().to_owned();
        app.same_site_post("/api/auth/logout", &format!("auth_token={jwt}"))
            .send()
            .await
            .unwrap();

        let user = domain::members::users::find_by_patreon_id(&app.db, &id.as_str().into())
            .await
            .unwrap()
            .unwrap();
        let cipher = &app.settings.token_cipher;
        let patreon_access = cipher
            .decrypt(
                user.access_token.as_deref().unwrap(),
                &token_aad(&id, "access_token"),
            )
            .unwrap();
        let patreon_refresh = cipher
            .decrypt(
                user.refresh_token.as_deref().unwrap(),
                &token_aad(&id, "refresh_token"),
            )
            .unwrap();

        let logs = super::all();
        let secrets = [
            ("JWT (cookie)", jwt.as_str()),
            ("JWT (bearer)", bearer.as_str()),
            ("JWT signature", jwt.rsplit('.').next().unwrap()),
            ("refresh token", refresh.as_str()),
            ("rotated refresh token", renewed_refresh.as_str()),
            ("Bearer refresh token", bearer_refresh.as_str()),
            (
                "rotated Bearer refresh token",
                bearer_renewed_refresh.as_str(),
            ),
            ("handoff code", handoff.as_str()),
            ("OAuth code", code.as_str()),
            ("OAuth state", state.as_str()),
            ("Patreon access token", patreon_access.expose_secret()),
            ("Patreon refresh token", patreon_refresh.expose_secret()),
            ("JWT_SECRET", JWT_SECRET),
            ("TOKEN_ENCRYPTION_KEY", ENCRYPTION_KEY),
            ("client secret", "mock-client-secret"),
        ];
        for (what, secret) in secrets {
            assert!(!logs.contains(secret), "{what} appears in the logs");
        }
        assert!(
            logs.contains("signed in") && logs.contains("user_id="),
            "sign-in is logged with the user id"
        );
        assert!(
            logs.contains("authentication failed"),
            "auth failures are logged"
        );
        assert!(logs.contains("request_id="), "log lines carry a request id");
    }
}
