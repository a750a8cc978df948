#![cfg(test)]
//! `Prometheus` and `analyse` against a real Prometheus (scripts/install-prometheus.sh) scraping an
//! exporter that mimics the filter's series. Each test runs its own exporter and Prometheus on free
//! loopback ports, so the tests run in parallel.

#[path = "support/prometheus_env.rs"]
mod env;

use controller::prometheus::Prometheus;
use env::{Exporter, PromServer, Traffic, ROLLOUT};
use rollout::analysis::{analyse, Judged, Window};
use rollout::api::{CheckStatus, MetricCheck, OnFailure, Verdict};
use rollout::machine::{self, Action, CheckOutcome, Policy, State};
use rollout::ports::MetricsSource;
use std::time::{Duration, Instant};

/// The analysis window. With a 1 s scrape interval, 5 s holds about five samples per series.
const RANGE: &str = "5s";
/// After a traffic change, samples older than the change leave the window after the window's
/// length; a little more covers the gap between our clock read and Prometheus' evaluation time.
const SETTLE: Duration = Duration::from_millis(5500);
const MIN_SAMPLES: u64 = 50;
/// Scrapes to wait for before a first analysis: two intervals of data at 50 requests/s give
/// `increase` well over `MIN_SAMPLES`.
const SCRAPES: f64 = 3.0;

const HEALTHY: Traffic = Traffic {
    rps: 50.0,
    error_share: 0.0,
    latency_ms: 8.0,
};
const STABLE: Traffic = Traffic {
    rps: 50.0,
    error_share: 0.0,
    latency_ms: 8.0,
};

/// The checks a real CohortRollout would carry, in its own field names: both built-ins, a custom
/// template, and a comparison with stable.
const CHECKS: &str = r#"
- name: success-rate
  builtin: successRate
  thresholdRange: { min: 99 }
- name: latency-p99
  builtin: latencyP99
  thresholdRange: { max: 100 }
- name: mean-latency
  query: >-
    sum(rate(sluice_upstream_latency_ms_sum{sluice_rollout="{{rollout}}",sluice_cohort="{{cohort}}"}[{{interval}}]))
    / sum(rate(sluice_upstream_latency_ms_count{sluice_rollout="{{rollout}}",sluice_cohort="{{cohort}}"}[{{interval}}]))
  thresholdRange: { max: 50 }
- name: success-vs-stable
  builtin: successRate
  thresholdRange: {}
  compareToStable: { maxRelativeDegradation: 0.02 }
"#;

fn checks() -> Vec<MetricCheck> {
    serde_yaml::from_str(CHECKS).unwrap()
}

const WINDOW: Window<'static> = Window {
    rollout: ROLLOUT,
    range: RANGE,
};

/// One exporter and the Prometheus scraping it, with the client the controller would use.
struct Stack {
    exporter: Exporter,
    server: PromServer,
    prom: Prometheus,
}

/// Starts both and waits until a few scrapes are in: at a constant rate, ratios and quantiles are
/// already exact, and `increase` extrapolates the count over the whole window.
async fn stack(canary: Traffic) -> Stack {
    let t0 = Instant::now();
    let exporter = Exporter::start(canary, STABLE);
    let server = PromServer::start(exporter.addr);
    let prom = Prometheus::new(&server.url).unwrap();
    let s = Stack {
        exporter,
        server,
        prom,
    };
    // Prometheus applies its scrape targets on a 5 s reload tick, so the first scrape comes late.
    wait_scrapes(&s, Duration::from_secs(20)).await;
    eprintln!(
        "{} scraped {SCRAPES} times after {:?}",
        s.server.url,
        t0.elapsed()
    );
    s
}

/// Changes the canary's traffic and waits until the window holds only samples taken after it,
/// enough of them for `increase`: a loaded machine that scrapes late waits longer instead of
/// judging a window that mixes old and new traffic.
async fn change_canary(s: &Stack, traffic: Traffic) {
    s.exporter.set("canary", traffic);
    tokio::time::sleep(SETTLE).await;
    wait_scrapes(s, Duration::from_secs(10)).await;
}

/// Waits until every series has `SCRAPES` samples in the window.
async fn wait_scrapes(s: &Stack, timeout: Duration) {
    let scraped = format!("min(count_over_time(sluice_requests_total[{RANGE}]))");
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(n)) = s.prom.query(&scraped).await {
            if n >= SCRAPES {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus at {} did not scrape the exporter at {} {SCRAPES} times in {RANGE}",
            s.server.url,
            s.exporter.addr
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(prom: &Prometheus, scenario: &str) -> Vec<CheckStatus> {
    let statuses = analyse(prom, &checks(), &WINDOW, MIN_SAMPLES, Judged::Canary).await;
    for s in &statuses {
        eprintln!(
            "[{scenario}] {}: {:?} value={:?} stable={:?} samples={:?} ({})",
            s.name, s.verdict, s.value, s.stable_value, s.samples, s.message
        );
    }
    statuses
}

fn get<'a>(statuses: &'a [CheckStatus], name: &str) -> &'a CheckStatus {
    statuses.iter().find(|s| s.name == name).unwrap()
}

/// One round of the state machine from the start of a three-step rollout.
fn round(statuses: &[CheckStatus]) -> (State, Action) {
    let policy = Policy {
        step_count: 3,
        gates: vec![false; 3],
        threshold: 2,
        max_consecutive_errors: 5,
        progress_deadline_secs: None,
        on_failure: OnFailure::Rollback,
    };
    let outcomes: Vec<_> = statuses
        .iter()
        .map(|s| CheckOutcome {
            verdict: s.verdict,
            critical: false,
            guardrail: false,
        })
        .collect();
    machine::next(State::start(0), &policy, &outcomes, None, 10)
}

#[tokio::test]
async fn healthy_canary_passes_and_query_shapes_are_handled() {
    let s = stack(HEALTHY).await;
    let st = run(&s.prom, "healthy").await;
    for c in &st {
        assert_eq!(c.verdict, Verdict::Pass, "{c:?}");
        assert!(c.samples.unwrap() >= MIN_SAMPLES, "{c:?}");
    }
    let success = get(&st, "success-rate").value.unwrap();
    assert!((success - 100.0).abs() < 1e-6, "success {success}");
    // All observations in Envoy's (5, 10] bucket: histogram_quantile interpolates to 9.95.
    let p99 = get(&st, "latency-p99").value.unwrap();
    assert!((5.0..=10.0).contains(&p99), "p99 {p99}");
    let mean = get(&st, "mean-latency").value.unwrap();
    assert!((mean - 8.0).abs() < 0.01, "mean {mean}");
    assert_eq!(get(&st, "success-vs-stable").stable_value, Some(100.0));
    assert_eq!(round(&st).1, Action::Advance);

    // Result shapes: scalar, NaN, empty vector, several series, range vector, bad PromQL.
    let p = &s.prom;
    assert_eq!(p.query("1 + 1").await, Ok(Some(2.0)));
    assert!(p.query("0 / 0").await.unwrap().unwrap().is_nan());
    assert_eq!(p.query("sum(sluice_no_such_metric)").await, Ok(None));
    let many = p.query("sluice_requests_total").await.unwrap_err();
    assert!(
        many.contains("2 series") && many.contains("aggregate"),
        "{many}"
    );
    assert!(many.contains(&s.server.url), "{many}");
    let range = p.query("sluice_requests_total[5s]").await.unwrap_err();
    assert!(range.contains("range vector"), "{range}");
    let bad = p.query("sum(rate(").await.unwrap_err();
    assert!(
        bad.contains(&s.server.url) && bad.contains("bad_data"),
        "{bad}"
    );
    eprintln!("[shapes] several series: {many}\n[shapes] bad PromQL: {bad}");
}

#[tokio::test]
async fn canary_turning_to_5xx_fails_success_rate() {
    let s = stack(HEALTHY).await;
    // The change happens while Prometheus scrapes, as a bad deploy would: the window follows it.
    change_canary(
        &s,
        Traffic {
            error_share: 0.2,
            ..HEALTHY
        },
    )
    .await;
    let st = run(&s.prom, "5xx").await;
    let success = get(&st, "success-rate");
    assert_eq!(success.verdict, Verdict::Fail, "{success:?}");
    assert!((success.value.unwrap() - 80.0).abs() < 1.0, "{success:?}");
    let vs = get(&st, "success-vs-stable");
    assert_eq!(vs.verdict, Verdict::Fail, "{vs:?}");
    assert!((vs.stable_value.unwrap() - 100.0).abs() < 1e-6, "{vs:?}");
    // Errors are not slow here: the latency checks still pass.
    assert_eq!(get(&st, "latency-p99").verdict, Verdict::Pass);
    assert_eq!(get(&st, "mean-latency").verdict, Verdict::Pass);
    // Two failed checks reach the policy's threshold of 2 at once.
    assert!(
        matches!(round(&st).1, Action::Rollback(_)),
        "{:?}",
        round(&st)
    );
}

#[tokio::test]
async fn slow_canary_fails_latency() {
    let s = stack(HEALTHY).await;
    change_canary(
        &s,
        Traffic {
            latency_ms: 400.0,
            ..HEALTHY
        },
    )
    .await;
    let st = run(&s.prom, "slow").await;
    let p99 = get(&st, "latency-p99");
    assert_eq!(p99.verdict, Verdict::Fail, "{p99:?}");
    // In the (250, 500] bucket: interpolated to 497.5.
    assert!((250.0..=500.0).contains(&p99.value.unwrap()), "{p99:?}");
    let mean = get(&st, "mean-latency");
    assert_eq!(mean.verdict, Verdict::Fail, "{mean:?}");
    assert!((mean.value.unwrap() - 400.0).abs() < 1.0, "{mean:?}");
    assert_eq!(get(&st, "success-rate").verdict, Verdict::Pass);
}

#[tokio::test]
async fn too_few_canary_requests_is_inconclusive() {
    let s = stack(Traffic {
        rps: 0.2,
        ..HEALTHY
    })
    .await;
    let st = run(&s.prom, "few").await;
    for c in &st {
        assert_eq!(c.verdict, Verdict::Inconclusive, "{c:?}");
        assert!(c.samples.unwrap_or(0) < MIN_SAMPLES, "{c:?}");
    }
    let (state, action) = round(&st);
    assert!(matches!(action, Action::Hold(_)), "{action:?}");
    assert_eq!(state.step, 0);
}

#[tokio::test]
async fn stopped_prometheus_is_an_error_and_holds() {
    let mut s = stack(HEALTHY).await;
    let before = run(&s.prom, "before-stop").await;
    assert!(
        before.iter().all(|c| c.verdict == Verdict::Pass),
        "{before:?}"
    );
    s.server.stop();
    let st = run(&s.prom, "stopped").await;
    for c in &st {
        assert_eq!(c.verdict, Verdict::Error, "{c:?}");
        assert!(c.message.contains(&s.server.url), "{c:?}");
    }
    // The first query may meet the pooled keep-alive connection closing; from then on nothing
    // listens on the port.
    let refused = s.prom.query("1").await.unwrap_err();
    eprintln!("[stopped] next query: {refused}");
    assert!(
        refused.contains(&s.server.url) && refused.contains("Connection refused"),
        "{refused}"
    );
    let (state, action) = round(&st);
    assert!(matches!(action, Action::Hold(_)), "{action:?}");
    assert_eq!(state.step, 0);
    assert_eq!(state.consecutive_errors, 1);
}

#[tokio::test]
async fn hung_prometheus_times_out() {
    // Accepts connections and never answers, like a wedged server.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let prom = Prometheus::with_timeout(&url, Duration::from_millis(500)).unwrap();
    let started = Instant::now();
    let err = prom.query("1").await.unwrap_err();
    eprintln!("[hung] {err} after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&url) && err.contains("no answer within 500ms"),
        "{err}"
    );
    drop(listener);
}

#[test]
fn bad_url_names_the_url() {
    for url in ["not a url", "ftp://prometheus:9090", ""] {
        let err = Prometheus::new(url).err().expect(url).to_string();
        assert!(err.contains(&format!("{url:?}")), "{err}");
        eprintln!("[bad-url] {err}");
    }
}
