//! `patreon-mock` binary: the mock with the demo personas, on 127.0.0.1 until Ctrl-C or SIGTERM.
//!
//! Env: `MOCK_BIND` (127.0.0.1; 0.0.0.0 in a container), `MOCK_PORT` (8090), `MOCK_CLIENT_ID`, `MOCK_CLIENT_SECRET`, `MOCK_CAMPAIGN_ID`,
//! `MOCK_CREATOR_TOKEN`, `MOCK_USERS` (extra active patrons, ids from 900000000),
//! `MOCK_AUTO_CONSENT_USER`, `RUST_LOG`.

use anyhow::Context as _;
use patreon_mock::{GENERATED_FIRST_ID, MockConfig, MockPatreon, generated_patrons};

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse<T: std::str::FromStr>(name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    env(name)
        .map(|v| {
            v.trim()
                .parse::<T>()
                .with_context(|| format!("invalid {name}"))
        })
        .transpose()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let defaults = MockConfig::default();
    let config = MockConfig {
        port: parse("MOCK_PORT")?.unwrap_or(8090),
        client_id: env("MOCK_CLIENT_ID").unwrap_or(defaults.client_id),
        client_secret: env("MOCK_CLIENT_SECRET").unwrap_or(defaults.client_secret),
        campaign_id: env("MOCK_CAMPAIGN_ID").unwrap_or(defaults.campaign_id),
        creator_access_token: env("MOCK_CREATOR_TOKEN").or(defaults.creator_access_token),
        auto_consent_user: env("MOCK_AUTO_CONSENT_USER"),
        seed_demo_users: true,
        ..defaults
    };
    let extra: u64 = parse("MOCK_USERS")?.unwrap_or(0);
    let campaign_id = config.campaign_id.clone();
    let bind: std::net::IpAddr =
        parse("MOCK_BIND")?.unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let mock = MockPatreon::start_on(bind, config).await?;
    if extra > 0 {
        mock.upsert_users(generated_patrons(&campaign_id, GENERATED_FIRST_ID, extra));
    }
    let url = mock.base_url();
    println!("patreon-mock listening on {url} (campaign {campaign_id}, {extra} generated patrons)");
    println!("  authorize: {url}/oauth2/authorize   token: {url}/api/oauth2/token");
    println!("  api:       {url}/api/oauth2/v2/...  admin: {url}/__mock/users");
    // Ctrl-C by hand, SIGTERM from docker.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    mock.shutdown().await;
    Ok(())
}
