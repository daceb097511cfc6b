//! The registry renders the text format Prometheus reads, and the example alert rules only
//! name metrics it exports.

use super::*;

#[test]
fn renders_in_the_text_format() {
    metrics().job("sweep", "pushed");
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &metrics().registry).unwrap();
    assert!(out.contains("# TYPE gate_jobs counter"), "{out}");
    assert!(
        out.contains(r#"gate_jobs_total{kind="sweep",event="pushed"}"#),
        "{out}"
    );
    assert!(out.ends_with("# EOF\n"));
}

/// The example alert rules only name metrics this service exports: a renamed metric would
/// otherwise silence its alert without anyone noticing.
#[test]
fn the_alert_rules_name_only_exported_metrics() {
    let rules = include_str!("../../../../deploy/prometheus/alerts.yml");
    // A family is only rendered once it has a child: give each one.
    let m = metrics();
    let http = HttpLabels {
        method: "GET".into(),
        route: "/api/auth/me".into(),
        status: 200,
    };
    m.http_requests.get_or_create(&http).observe(0.001);
    for family in [&m.webhooks, &m.sign_ins, &m.token_refreshes] {
        family
            .get_or_create(&OutcomeLabels { outcome: "ok" })
            .inc_by(0);
    }
    let (endpoint, outcome) = ("identity", "ok");
    m.patreon_requests
        .get_or_create(&PatreonLabels { endpoint, outcome })
        .inc_by(0);
    let check = CheckLabels {
        trigger: "sweep",
        outcome: "verified",
    };
    m.membership_checks.get_or_create(&check).inc_by(0);
    let state = WebhookStateLabels { state: "active" };
    m.patreon_webhooks.get_or_create(&state).inc_by(0);
    let state = QueueStateLabels { state: "done" };
    m.queue_jobs.get_or_create(&state).inc_by(0);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &metrics().registry).unwrap();
    let exported: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let named: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("gate_"))
        .collect();
    assert!(named.len() >= 8, "{named:?}");
    for name in named {
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            exported.contains(&base),
            "alerts.yml names {name}, which is not exported (exported: {exported:?})"
        );
    }
}
