//! C1–C3: tokens stay readable by a plain PyJWT check, so existing Flask routes keep working.

use std::process::Command;

use reqwest::StatusCode;

use crate::helpers::*;

/// Runs `jwt.decode` in Python; `Ok(user_id)` or `Err(exception class name)`.
fn pyjwt_decode(token: &str, secret: &str, audience: Option<&str>) -> Result<String, String> {
    let script = r#"
import sys, jwt
token, secret, audience = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    kwargs = {"audience": audience} if audience else {}
    print("OK " + jwt.decode(token, secret, algorithms=["HS256"], **kwargs)["user_id"])
except Exception as e:
    print("ERR " + type(e).__name__)
"#;
    let out = Command::new("python3")
        .args(["-c", script, token, secret, audience.unwrap_or("")])
        .output()
        .expect("python3 runs (the test command installs PyJWT)");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !stdout.is_empty(),
        "PyJWT missing? stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match stdout.split_once(' ') {
        Some(("OK", user_id)) => Ok(user_id.to_owned()),
        Some(("ERR", class)) => Err(class.to_owned()),
        _ => panic!("unexpected output {stdout}"),
    }
}

#[tokio::test]
async fn a_plain_pyjwt_check_accepts_our_tokens_and_reads_user_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("3101");
    let signed_in = app.sign_in(&id).await;
    assert_eq!(
        pyjwt_decode(&signed_in.jwt, JWT_SECRET, None),
        Ok("3101".into())
    );
    assert_eq!(
        pyjwt_decode(&signed_in.jwt, "another-secret-another-secret-0000", None),
        Err("InvalidSignatureError".into())
    );
}

#[tokio::test]
async fn with_an_audience_configured_pyjwt_needs_the_audience_too() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default().with("JWT_AUDIENCE", "flask-app"),
    )
    .await;
    let id = app.active_patron("3201");
    let signed_in = app.sign_in(&id).await;
    assert_eq!(
        pyjwt_decode(&signed_in.jwt, JWT_SECRET, None),
        Err("InvalidAudienceError".into())
    );
    assert_eq!(
        pyjwt_decode(&signed_in.jwt, JWT_SECRET, Some("flask-app")),
        Ok("3201".into())
    );
    assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn our_refresh_token_state_and_handoff_are_not_jwts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let id = app.active_patron("3301");
    let (authorize, _) = app.start_login(None).await;
    let state = query_param(&authorize, "state").unwrap();
    let signed_in = app.sign_in(&id).await;
    for opaque in [
        signed_in.refresh_cookie.as_str(),
        state.as_str(),
        signed_in.handoff().as_str(),
    ] {
        assert_eq!(
            pyjwt_decode(opaque, JWT_SECRET, None),
            Err("DecodeError".into()),
            "{opaque}"
        );
        assert_eq!(
            app.me_bearer(opaque).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}
