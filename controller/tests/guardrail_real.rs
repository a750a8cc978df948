#![cfg(test)]
//! The proxies' guardrail as the controller reads it: a real Prometheus (scripts/install-prometheus.sh)
//! scrapes an exporter serving the filter's series as Envoy's `/stats/prometheus` shows them, the
//! `sluice_guardrail_tripped` gauge included. The analysis reads a trip through the controller's
//! `Prometheus` client, and the local-mode controller rolls the rollout back on it.

#[path = "support/local_env.rs"]
mod local_env;
#[path = "support/prometheus_env.rs"]
mod prometheus_env;

use controller::local::{self, LocalOptions};
use controller::prometheus::Prometheus;
use local_env::Env;
use prometheus_env::{Exporter, PromServer, Traffic, ROLLOUT};
use rollout::analysis::{analyse, guardrail_check, Judged, Window, GUARDRAIL_CHECK};
use rollout::api::{CheckStatus, Verdict};
use rollout::ports::MetricsSource;
use serde_json::Value;
use std::time::{Duration, Instant};

const CUT_OFF: &str = "the proxies cut the canary off";

const STABLE: Traffic = Traffic {
    rps: 50.0,
    error_share: 0.0,
    latency_ms: 8.0,
};

/// The exporter with `canary` traffic and a Prometheus that has scraped it.
async fn stack(canary: Traffic) -> (Exporter, PromServer, Prometheus) {
    let exporter = Exporter::start(canary, STABLE);
    let server = PromServer::start(exporter.addr);
    let prom = Prometheus::new(&server.url).unwrap();
    // Prometheus applies its scrape targets on a 5 s reload tick, so the first scrape comes late.
    until_prometheus_says(&prom, "sum(sluice_requests_total) > 0", |v| v.is_some()).await;
    (exporter, server, prom)
}

/// Polls `promql` until its answer satisfies `want`: what the exporter serves has been scraped.
async fn until_prometheus_says(
    prom: &Prometheus,
    promql: &str,
    want: impl Fn(Option<f64>) -> bool,
) {
    let start = Instant::now();
    loop {
        let got = prom.query(promql).await;
        if got.as_ref().is_ok_and(|v| want(*v)) {
            eprintln!("{promql} = {got:?} after {:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{promql}: still {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn guardrail(prom: &Prometheus, range: &str) -> CheckStatus {
    let window = Window {
        rollout: ROLLOUT,
        range,
    };
    let mut got = analyse(prom, &[guardrail_check()], &window, 10, Judged::Canary).await;
    let status = got.remove(0);
    eprintln!(
        "[{range}] {}: {:?} value={:?} ({}) <- {}",
        status.name, status.verdict, status.value, status.message, status.query
    );
    status
}

#[tokio::test]
async fn prometheus_shows_a_trip_as_a_guardrail_fail_even_after_the_trip_ended() {
    let (exporter, _server, prom) = stack(STABLE).await;
    // No proxy has exported the gauge yet (or an older filter): no trip.
    let absent = guardrail(&prom, "30s").await;
    assert_eq!((absent.verdict, absent.value), (Verdict::Pass, Some(0.0)));

    exporter.set_guardrail_tripped(false);
    until_prometheus_says(&prom, "max(sluice_guardrail_tripped)", |v| v == Some(0.0)).await;
    let quiet = guardrail(&prom, "30s").await;
    assert_eq!((quiet.verdict, quiet.value), (Verdict::Pass, Some(0.0)));

    // The proxies trip, Prometheus scrapes it, and the trip ends (its hold passed) before the round.
    exporter.set_guardrail_tripped(true);
    until_prometheus_says(&prom, "max(sluice_guardrail_tripped)", |v| v == Some(1.0)).await;
    exporter.set_guardrail_tripped(false);
    until_prometheus_says(&prom, "max(sluice_guardrail_tripped)", |v| v == Some(0.0)).await;
    let tripped = guardrail(&prom, "30s").await;
    assert_eq!(
        (tripped.verdict, tripped.value),
        (Verdict::Fail, Some(1.0)),
        "{tripped:?}"
    );
    assert!(tripped.message.contains(CUT_OFF), "{tripped:?}");
    let trips = prom
        .query(r#"sum(sluice_guardrail_trips_total{sluice_rollout="shop"})"#)
        .await;
    assert_eq!(trips, Ok(Some(1.0)));
}

/// Local mode's rollout file: analysed every second over a 30 s window, and a success-rate check
/// that needs far more canary requests than the test sends.
fn rollout_yaml(webhook: &str) -> String {
    format!(
        "apiVersion: sluice.dev/v1alpha1
kind: CohortRollout
metadata: {{name: {ROLLOUT}}}
spec:
  target: {{wasmPlugin: {{name: sluice}}, salt: v2}}
  steps: {}
  analysis:
    interval: 1s
    window: 30s
    minSamples: 100000
    metrics: [{{name: ok, builtin: successRate, thresholdRange: {{min: 99}}}}]
  alerts:
    webhooks: [{webhook}]
",
        local_env::PLAN
    )
}

/// The `guardrail` check of the last analysis in the state file: (verdict, value).
fn last_guardrail(env: &Env) -> Option<(String, f64)> {
    let status = env.status();
    let checks = status["lastAnalysis"].as_array()?;
    let g = checks.iter().find(|c| c["name"] == GUARDRAIL_CHECK)?;
    Some((g["verdict"].as_str()?.to_string(), g["value"].as_f64()?))
}

#[tokio::test]
async fn the_controller_rolls_back_when_the_proxies_cut_the_canary_off() {
    // A canary too small for the spec's own check to judge: only the proxies' trip can fail it.
    let tiny = Traffic { rps: 0.5, ..STABLE };
    let (exporter, server, prom) = stack(tiny).await;
    exporter.set_guardrail_tripped(false);
    until_prometheus_says(&prom, "max(sluice_guardrail_tripped)", |v| v == Some(0.0)).await;

    let env = Env::new();
    std::fs::write(&env.rollout, rollout_yaml(&env.webhook.url)).unwrap();
    let controller = tokio::spawn(local::run(LocalOptions {
        rollout_file: env.rollout.clone(),
        prometheus: server.url.clone(),
        ecds_file: env.ecds.clone(),
        state_file: env.state.clone(),
    }));
    env.started().await;
    // Analysed against the real Prometheus: no trip, too few samples, the step holds.
    env.until(
        "an analysis with an untripped guardrail",
        Duration::from_secs(20),
        |e| last_guardrail(e) == Some(("Pass".into(), 0.0)),
    )
    .await;
    assert_eq!(env.entry(), Some(("progressing".into(), 10.0)));

    let tripped_at = Instant::now();
    exporter.set_guardrail_tripped(true);
    env.until("the rollback", Duration::from_secs(30), |e| {
        e.entry().is_some_and(|(state, _)| state == "rolled_back")
    })
    .await;
    eprintln!("rolled back {:?} after the trip", tripped_at.elapsed());
    assert_eq!(env.status()["phase"], Value::from("RolledBack"));
    assert_eq!(last_guardrail(&env), Some(("Fail".into(), 1.0)));
    let (reason, message) = env.condition("Progressing");
    assert_eq!(reason, "RolledBack");
    assert!(message.contains(CUT_OFF), "{message}");
    env.until("the rollback alert", Duration::from_secs(10), |e| {
        e.alert_kinds().contains(&"rollback".to_string())
    })
    .await;
    let texts = env.alert_texts();
    let rollback = texts.iter().find(|t| t.contains("ROLLED BACK")).unwrap();
    assert!(rollback.contains(CUT_OFF), "{texts:#?}");
    eprintln!("alert: {rollback}");
    controller.abort();
}
