use std::collections::HashMap;

use super::*;

fn valid() -> HashMap<&'static str, String> {
    HashMap::from([
        (
            "JWT_SECRET",
            "a-long-random-secret-for-tests-0123456789".to_owned(),
        ),
        (
            "TOKEN_ENCRYPTION_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
        ("PATREON_CLIENT_ID", "client".to_owned()),
        ("PATREON_CLIENT_SECRET", "client-secret".to_owned()),
        (
            "PATREON_REDIRECT_URI",
            "https://gate.example.com/api/auth/patreon/callback".to_owned(),
        ),
        ("PATREON_CAMPAIGN_ID", "1234560".to_owned()),
        ("FRONTEND_URL", "https://app.example.com".to_owned()),
    ])
}

fn load(vars: &HashMap<&'static str, String>) -> Result<Settings, ConfigError> {
    Settings::from_lookup(|k| vars.get(k).cloned())
}

fn error_for(name: &'static str, value: Option<&str>) -> ConfigError {
    let mut vars = valid();
    match value {
        Some(v) => vars.insert(name, v.to_owned()),
        None => vars.remove(name),
    };
    match load(&vars) {
        Ok(_) => panic!("{name}={value:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn defaults_fill_everything_optional() {
    let s = load(&valid()).unwrap();
    assert_eq!(s.database_url, crate::infra::db::DEFAULT_SQLITE_URL);
    assert_eq!(s.port, 8080);
    assert_eq!(s.jwt.access_ttl, chrono::Duration::minutes(15));
    assert_eq!(s.jwt.max_session_age, chrono::Duration::hours(168));
    assert!(s.cookie.secure);
    assert_eq!(s.cookie.same_site, SameSite::Lax);
    assert_eq!(s.patreon.base_url.as_str(), "https://www.patreon.com/");
    assert_eq!(
        s.allowed_origins,
        vec!["https://app.example.com".to_owned()]
    );
    assert!(s.auto_migrate && !s.api_docs);
    assert_eq!(s.trusted_proxies, TrustedProxies::default());
    assert!(s.redis_url.is_none());
    assert_eq!(s.queue_poll, std::time::Duration::from_millis(200));
}

#[test]
fn every_required_variable_is_named_when_missing() {
    for name in valid().keys() {
        let e = error_for(name, None);
        assert_eq!(e.variable, *name);
        assert!(
            e.to_string()
                .starts_with(&format!("configuration error: {name}: ")),
            "{e}"
        );
    }
}

#[test]
fn weak_jwt_secrets_refuse_to_start_without_printing_them() {
    for weak in [
        "",
        "short",
        "secret",
        "changeme",
        "CHANGE_ME_to_at_least_32_random_bytes_0000",
        &"a".repeat(40),
    ] {
        let e = error_for("JWT_SECRET", Some(weak));
        assert_eq!(e.variable, "JWT_SECRET");
        if weak.len() > 8 {
            assert!(!e.to_string().contains(weak), "{e}");
        }
    }
}

#[test]
fn bad_values_are_refused_with_the_variable_named() {
    let cases: &[(&'static str, &str)] = &[
        ("TOKEN_ENCRYPTION_KEY", "dG9vIHNob3J0"),
        ("TOKEN_ENCRYPTION_KEY", "not base64 !!"),
        ("PATREON_REDIRECT_URI", "/relative/callback"),
        ("PATREON_CAMPAIGN_ID", "my-campaign"),
        ("FRONTEND_URL", "javascript:alert(1)"),
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("JWT_EXPIRATION_HOURS", "0"),
        ("ACCESS_TOKEN_MINUTES", "-5"),
        ("COOKIE_SECURE", "maybe"),
        ("COOKIE_SAMESITE", "sometimes"),
        ("COOKIE_DOMAIN", "example.com; Path=/evil"),
        ("ADMIN_PATREON_IDS", "123,abc"),
        ("PATREON_BASE_URL", "ftp://patreon.com"),
        ("VERIFY_SCHEDULE", "on the first"),
        ("QUEUE_POLL_MS", "0"),
        ("QUEUE_POLL_MS", "fast"),
    ];
    for (name, value) in cases {
        assert_eq!(
            error_for(name, Some(value)).variable,
            *name,
            "{name}={value}"
        );
    }
}

#[test]
fn samesite_none_needs_secure_cookies() {
    let mut vars = valid();
    vars.insert("COOKIE_SAMESITE", "None".into());
    vars.insert("COOKIE_SECURE", "false".into());
    assert_eq!(
        load(&vars).err().map(|e| e.variable),
        Some("COOKIE_SAMESITE")
    );
}

#[test]
fn id_lists_and_extra_origins_are_parsed() {
    let mut vars = valid();
    vars.insert("ADMIN_PATREON_IDS", " 1, 22 ,333 ".into());
    vars.insert(
        "CORS_ALLOWED_ORIGINS",
        "https://admin.example.com/some/path".into(),
    );
    let s = load(&vars).unwrap();
    assert_eq!(s.admin_patreon_ids.len(), 3);
    assert!(s.admin_patreon_ids.contains("22"));
    assert_eq!(s.allowed_origins[1], "https://admin.example.com");
}

/// `KEY=value` lines of an env file; comments and blanks skipped.
fn env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Every variable the configuration reads, in the order it asks for them.
fn variables_read(values: &HashMap<String, String>) -> Vec<String> {
    let asked = std::sync::Mutex::new(Vec::new());
    let settings = Settings::from_lookup(|k| {
        asked.lock().unwrap().push(k.to_owned());
        values.get(k).cloned()
    });
    assert!(settings.is_ok(), "{:?}", settings.err());
    asked.into_inner().unwrap()
}

#[test]
fn env_example_lists_every_variable_the_service_reads_and_no_other() {
    let example = include_str!("../../../../.env.example");
    let listed: std::collections::BTreeSet<String> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k.to_owned())
        .filter(|k| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
        })
        .collect();
    let vars: HashMap<String, String> = valid()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let mut read: std::collections::BTreeSet<String> = variables_read(&vars).into_iter().collect();
    // Read by the logging setup, not by `Settings`.
    read.extend(["RUST_LOG".to_owned(), "LOG_FORMAT".to_owned()]);
    let missing: Vec<_> = read.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&read).collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
    assert!(stale.is_empty(), ".env.example lists unknown {stale:?}");
}

#[test]
fn the_compose_mock_profile_settings_are_valid() {
    let vars = env_file(include_str!("../../../../deploy/mock.env"));
    let settings = Settings::from_lookup(|k| vars.get(k).cloned()).unwrap();
    assert_eq!(
        settings.patreon.authorize_url.as_ref().map(Url::as_str),
        Some("http://localhost:8090/oauth2/authorize")
    );
    assert!(!settings.cookie.secure, "the mock profile is plain http");
}
