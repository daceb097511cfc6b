//! The `api` binary refuses to start on bad configuration, naming the variable in one line and
//! never printing the secret (T12).

use std::process::Command;

fn run_api(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = std::env::temp_dir().join(format!("gate-startup-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .envs(vars.iter().copied())
        .current_dir(&dir)
        .output()
        .expect("run the api binary");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const BASE: &[(&str, &str)] = &[
    (
        "TOKEN_ENCRYPTION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    ("PATREON_CLIENT_ID", "client"),
    ("PATREON_CLIENT_SECRET", "client-secret"),
    (
        "PATREON_REDIRECT_URI",
        "https://gate.example.com/api/auth/patreon/callback",
    ),
    ("PATREON_CAMPAIGN_ID", "1234560"),
    ("FRONTEND_URL", "https://app.example.com"),
    ("PORT", "0"),
];

#[test]
fn the_api_refuses_to_start_with_a_weak_or_missing_jwt_secret() {
    for secret in [
        None,
        Some("changeme-changeme-changeme-changeme"),
        Some("tooshort1234"),
    ] {
        let mut vars = BASE.to_vec();
        if let Some(s) = secret {
            vars.push(("JWT_SECRET", s));
        }
        let (code, stderr) = run_api(&vars);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.starts_with("configuration error: JWT_SECRET: "),
            "{stderr}"
        );
        if let Some(s) = secret {
            assert!(!stderr.contains(s), "the secret was printed: {stderr}");
        }
    }
}

#[test]
fn the_api_names_any_other_missing_variable() {
    let vars: Vec<(&str, &str)> = BASE
        .iter()
        .copied()
        .filter(|(k, _)| *k != "PATREON_CAMPAIGN_ID")
        .chain([("JWT_SECRET", "a-long-random-secret-for-tests-0123456789")])
        .collect();
    let (code, stderr) = run_api(&vars);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim(),
        "configuration error: PATREON_CAMPAIGN_ID: is required but not set"
    );
}

/// SIGTERM (what docker, systemd and PaaS platforms send) stops the api within its 10 s drain,
/// with exit status 0, even while a client holds a keep-alive connection open.
#[tokio::test]
async fn sigterm_stops_the_api_gracefully_within_ten_seconds() {
    let dir = std::env::temp_dir().join(format!("gate-sigterm-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let database = format!("sqlite://{}/gate.db?mode=rwc", dir.display());
    let mut api = Command::new(env!("CARGO_BIN_EXE_api"))
        .env_clear()
        .envs(BASE.iter().copied())
        .envs([
            ("JWT_SECRET", "a-long-random-secret-for-tests-0123456789"),
            ("PORT", port.as_str()),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("DATABASE_URL", database.as_str()),
            (
                "QUEUE_SQLITE_URL",
                &format!("sqlite://{}/queue.db?mode=rwc", dir.display()),
            ),
        ])
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let started = std::time::Instant::now();
    while !client
        .get(&ready)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "the api never became ready"
        );
        assert!(api.try_wait().unwrap().is_none(), "the api exited at start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let term = Command::new("kill")
        .args(["-TERM", &api.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let asked = std::time::Instant::now();
    let status = loop {
        if let Some(status) = api.try_wait().unwrap() {
            break status;
        }
        if asked.elapsed().as_secs() >= 10 {
            let _ = api.kill();
            panic!("the api was still running 10 s after SIGTERM");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    drop(client);
    let _ = std::fs::remove_dir_all(&dir);
}
