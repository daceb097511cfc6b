//! `worker webhook register|status|enable`: the operator's hand on Patreon's webhook for this
//! gate, through Patreon's API with `PATREON_CREATOR_ACCESS_TOKEN`.

use std::io::Write;

use anyhow::{Context, bail};
use clap::Subcommand;
use domain::patreon::{MEMBER_TRIGGERS, PatreonClient, Webhook};
use secrecy::ExposeSecret;
use url::Url;

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Subscribes URI to every member trigger of PATREON_CAMPAIGN_ID and prints the webhook's
    /// secret, once: store it as PATREON_WEBHOOK_SECRET for the api.
    Register {
        /// Where Patreon delivers: https://<api host>/api/patreon/webhook (plain http only to
        /// 127.0.0.1 or localhost).
        uri: String,
    },
    /// Lists the webhooks; exits 1 when one is paused or failing (for cron and alerts).
    Status,
    /// Unpauses a webhook; Patreon then sends the events it queued meanwhile.
    Enable {
        /// The id `worker webhook status` prints.
        webhook_id: String,
    },
}

/// Runs `worker webhook <command>`, writing what the operator reads to `out`.
pub async fn run(
    patreon: &PatreonClient,
    command: WebhookCommand,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Register { uri } => register(patreon, &delivery_uri(&uri)?, out).await,
        WebhookCommand::Status => status(patreon, out).await,
        WebhookCommand::Enable { webhook_id } => enable(patreon, &webhook_id, out).await,
    }
}

/// Where Patreon may deliver: https, or plain http only to this machine (the mock, tests),
/// since the body carries member data and the signature does not hide it.
pub fn delivery_uri(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("{raw:?} is not a URL"))?;
    let local = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if local => Ok(url),
        _ => bail!("the webhook URI must be https:// (plain http only to 127.0.0.1 or localhost)"),
    }
}

/// Registers `uri` for every member trigger and shows the secret, once.
async fn register(patreon: &PatreonClient, uri: &Url, out: &mut impl Write) -> anyhow::Result<()> {
    let existing = patreon.list_webhooks().await?;
    if let Some(hook) = existing.iter().find(|h| h.uri == uri.as_str()) {
        bail!(
            "webhook {} already delivers to {uri}; `worker webhook status` shows it \
             (a second one would send every event twice)",
            hook.id
        );
    }
    let hook = patreon.create_webhook(uri, &MEMBER_TRIGGERS).await?;
    let secret = hook
        .secret
        .as_ref()
        .context("Patreon registered the webhook but returned no secret")?;
    let campaign = &patreon.settings().campaign_id;
    writeln!(
        out,
        "registered webhook {} for campaign {campaign}: {} ({})",
        hook.id,
        hook.uri,
        hook.triggers.join(", ")
    )?;
    writeln!(out, "secret: {}", secret.expose_secret())?;
    writeln!(
        out,
        "Store it now as PATREON_WEBHOOK_SECRET for the api (and restart it): it is not shown again."
    )?;
    Ok(())
}

fn needs_attention(hook: &Webhook) -> bool {
    hook.paused || hook.num_consecutive_times_failed > 0
}

/// Lists the webhooks; fails (exit code 1) when one is paused or failing, for cron and alerts.
async fn status(patreon: &PatreonClient, out: &mut impl Write) -> anyhow::Result<()> {
    let hooks = patreon.list_webhooks().await?;
    if hooks.is_empty() {
        writeln!(
            out,
            "no webhooks registered; `worker webhook register <https uri>` adds one"
        )?;
    }
    for hook in &hooks {
        let state = if hook.paused { "PAUSED" } else { "active" };
        let last = hook
            .last_attempted_at
            .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
        writeln!(
            out,
            "{}  {}  {state}  failures in a row: {}  last attempt: {last}",
            hook.id, hook.uri, hook.num_consecutive_times_failed
        )?;
    }
    let troubled: Vec<&str> = hooks
        .iter()
        .filter(|h| needs_attention(h))
        .map(|h| h.id.as_str())
        .collect();
    if !troubled.is_empty() {
        bail!(
            "webhook(s) {} paused or failing: check the api is reachable at the URI, then \
             `worker webhook enable <id>`",
            troubled.join(", ")
        );
    }
    Ok(())
}

/// Unpauses webhook `id`; Patreon then sends the events it queued meanwhile.
async fn enable(patreon: &PatreonClient, id: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let hook = patreon
        .set_paused(id, false)
        .await
        .with_context(|| format!("cannot unpause webhook {id}"))?;
    writeln!(
        out,
        "webhook {} unpaused ({}); Patreon now sends what queued while it was paused",
        hook.id, hook.uri
    )?;
    Ok(())
}
