//! `webhook-bench`: the api and a worker as real processes on PostgreSQL and Redis, the Patreon
//! mock in this process. Phase 1 sends signed, distinct webhook deliveries at a fixed rate and
//! times each acknowledgement. Phase 2 cancels members' pledges one at a time, delivers the
//! webhook and polls the member's `/api/auth/me` until it says they no longer pay: the time
//! from receipt to visible. Driven by `bench/webhooks.sh`.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::Engine;
use hmac::{Hmac, Mac};
use patreon_mock::{GENERATED_FIRST_ID, MockConfig, MockMembership, MockPatreon, MockTier};
use reqwest::header;

const CAMPAIGN: &str = "1234560";
const SECRET: &str = "bench-webhook-secret-0123456789abcdef";

fn var<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().parse().ok().with_context(|| format!("bad {name}"))
        }
        _ => Ok(default),
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate: u64 = var("BENCH_RATE", 200)?;
    let seconds: u64 = var("BENCH_SECONDS", 30)?;
    let members: u64 = var("BENCH_MEMBERS", 200)?;
    let visible_samples: u64 = var("BENCH_VISIBLE_SAMPLES", 100)?;
    let port: u16 = var("BENCH_API_PORT", 18180)?;
    let database_url = std::env::var("DATABASE_URL").context("DATABASE_URL is required")?;

    let mock = MockPatreon::start(MockConfig {
        campaign_id: CAMPAIGN.into(),
        ..MockConfig::default()
    })
    .await?;
    mock.upsert_users(patreon_mock::generated_patrons(
        CAMPAIGN,
        GENERATED_FIRST_ID,
        members,
    ));
    let api_url = format!("http://127.0.0.1:{port}");
    let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut env: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        (
            "JWT_SECRET",
            format!("bench-{:032x}", rand::random::<u128>()),
        ),
        ("TOKEN_ENCRYPTION_KEY", key),
        ("PATREON_CLIENT_ID", "mock-client-id".into()),
        ("PATREON_CLIENT_SECRET", "mock-client-secret".into()),
        (
            "PATREON_REDIRECT_URI",
            format!("{api_url}/api/auth/patreon/callback"),
        ),
        ("PATREON_CAMPAIGN_ID", CAMPAIGN.into()),
        ("PATREON_BASE_URL", mock.base_url()),
        ("PATREON_WEBHOOK_SECRET", SECRET.into()),
        ("PATREON_CREATOR_ACCESS_TOKEN", "mock-creator-token".into()),
        // The mock has no limits here: this measures us, not Patreon's quota.
        ("PATREON_REQUESTS_PER_2S", "100000".into()),
        ("PATREON_REQUESTS_PER_TOKEN_PER_MIN", "100000".into()),
        ("FRONTEND_URL", format!("{api_url}/")),
        ("COOKIE_SECURE", "false".into()),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "100000".into()),
        // One address sends every delivery here, far above what one Patreon address would.
        ("WEBHOOK_RATE_LIMIT_PER_MINUTE", "1000000".into()),
        ("PORT", port.to_string()),
        ("BIND_ADDRESS", "127.0.0.1".into()),
        ("WORKER_HTTP_PORT", "0".into()),
        (
            "REDIS_KEY_PREFIX",
            format!("gate-bench-{:016x}", rand::random::<u64>()),
        ),
        ("RUST_LOG", "warn".into()),
    ]);
    if let Ok(url) = std::env::var("REDIS_URL") {
        env.insert("REDIS_URL", url);
    }
    let spawn = |bin: &str, args: &[&str]| -> anyhow::Result<Killed> {
        Ok(Killed(
            Command::new(bin)
                .args(args)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {bin}"))?,
        ))
    };
    let _api = spawn("target/release/api", &[])?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .build()?;
    wait_ready(&http, &api_url).await?;
    let _worker = spawn("target/release/worker", &["run"])?;

    let mut tokens = Vec::new();
    for n in 0..members {
        tokens.push(sign_in(&http, &api_url, GENERATED_FIRST_ID + n).await?);
    }
    eprintln!("{members} members signed in");

    // Phase 1: acknowledgements at a fixed rate, each delivery distinct.
    let documents: Vec<String> = futures_util::future::try_join_all(
        (0..members).map(|n| member_document(&http, &mock, GENERATED_FIRST_ID + n)),
    )
    .await?;
    let total = rate * seconds;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(total as usize);
    for i in 0..total {
        ticker.tick().await;
        let doc = &documents[(i % members) as usize];
        let body = with_note(doc, i);
        let http = http.clone();
        let url = format!("{api_url}/api/patreon/webhook");
        sends.push(tokio::spawn(async move {
            let started = Instant::now();
            let status = deliver(&http, &url, &body).await;
            (started.elapsed(), status)
        }));
    }
    let mut acks = Vec::new();
    let mut failures = 0;
    for send in sends {
        let (took, status) = send.await?;
        if status != Some(200) {
            failures += 1;
        }
        acks.push(took);
    }
    let ack = Percentiles::of(&mut acks);
    println!(
        "ack: {total} deliveries at {rate}/s: p50 {} p99 {} max {}, non-200 {failures}",
        ms(ack.p50),
        ms(ack.p99),
        ms(ack.max)
    );

    // Let the worker drain phase 1's events and rechecks before timing visibility.
    tokio::time::sleep(Duration::from_secs(var("BENCH_DRAIN_SECS", 20)?)).await;

    // Phase 2: receipt to visible, one member at a time.
    let mut visible = Vec::new();
    for n in 0..visible_samples.min(members) {
        let id = (GENERATED_FIRST_ID + n).to_string();
        let active = MockMembership::active(&id, CAMPAIGN, MockTier::supporter());
        let cancelled = MockMembership {
            last_charge_date: active.last_charge_date.clone(),
            ..MockMembership::former(&id, CAMPAIGN)
        };
        mock.set_membership(&id, CAMPAIGN, Some(cancelled));
        let body = member_document(&http, &mock, GENERATED_FIRST_ID + n).await?;
        let started = Instant::now();
        if deliver(&http, &format!("{api_url}/api/patreon/webhook"), &body).await != Some(200) {
            bail!("delivery refused");
        }
        loop {
            let me: serde_json::Value = http
                .get(format!("{api_url}/api/auth/me"))
                .bearer_auth(&tokens[n as usize])
                .send()
                .await?
                .json()
                .await?;
            if me["isPaidMember"] == false {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("member {id} still paying 30 s after the webhook");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        visible.push(started.elapsed());
    }
    let seen = Percentiles::of(&mut visible);
    println!(
        "receipt to visible in /api/auth/me: {} members: p50 {} p99 {} max {}",
        visible.len(),
        ms(seen.p50),
        ms(seen.p99),
        ms(seen.max)
    );
    mock.shutdown().await;
    Ok(())
}

struct Percentiles {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Percentiles {
    fn of(samples: &mut [Duration]) -> Self {
        samples.sort();
        let at = |q: f64| {
            samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1]
        };
        Self {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<md5::Md5>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A distinct delivery of the same member state.
fn with_note(document: &str, n: u64) -> String {
    let mut json: serde_json::Value = serde_json::from_str(document).expect("mock JSON");
    json["data"]["attributes"]["note"] = serde_json::Value::from(format!("delivery {n}"));
    json.to_string()
}

async fn deliver(http: &reqwest::Client, url: &str, body: &str) -> Option<u16> {
    let response = http
        .post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header("X-Patreon-Event", "members:update")
        .header("X-Patreon-Signature", sign(body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

async fn member_document(
    http: &reqwest::Client,
    mock: &MockPatreon,
    id: u64,
) -> anyhow::Result<String> {
    let url = format!(
        "{}/api/oauth2/v2/members/{}?include=user,campaign,currently_entitled_tiers\
         &fields%5Bmember%5D=patron_status,last_charge_status,last_charge_date,next_charge_date,\
         currently_entitled_amount_cents,will_pay_amount_cents,is_free_trial,email,full_name\
         &fields%5Btier%5D=title,amount_cents",
        mock.base_url(),
        patreon_mock::member_id_for(&id.to_string(), CAMPAIGN)
    );
    Ok(http
        .get(url)
        .bearer_auth("mock-creator-token")
        .header(header::USER_AGENT, "webhook-bench")
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

async fn wait_ready(http: &reqwest::Client, api_url: &str) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(r) = http.get(format!("{api_url}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the api did not become ready")
}

/// Signs `id` in through the api and the mock as a browser would; returns the JWT.
async fn sign_in(http: &reqwest::Client, api_url: &str, id: u64) -> anyhow::Result<String> {
    let login = http
        .get(format!("{api_url}/api/auth/patreon/login"))
        .send()
        .await?;
    let authorize = location(&login)?;
    let state_cookie = cookie_pair(&login, "oauth_state").context("no state cookie")?;
    let consent = http.get(format!("{authorize}&as={id}")).send().await?;
    let callback = location(&consent)?;
    let landed = http
        .get(callback)
        .header(header::COOKIE, state_cookie)
        .send()
        .await?;
    let token = cookie_pair(&landed, "auth_token").context("no auth_token cookie")?;
    Ok(token
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default())
}

fn location(r: &reqwest::Response) -> anyhow::Result<String> {
    Ok(r.headers()
        .get(header::LOCATION)
        .context("no redirect")?
        .to_str()?
        .to_owned())
}

/// `name=value` of the cookie whose name ends with `name` (prefixed names included).
fn cookie_pair(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.split('=').next().is_some_and(|n| n.ends_with(name)))
        .map(str::to_owned)
}
