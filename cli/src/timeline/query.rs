//! The timeline's data: three Prometheus range queries over the filter's per-cohort metrics, in the
//! PromQL style of analysis (`rollout::analysis`), through the same client crate the controller uses.

use super::model::{Panel, Series};
use controller::process::install_crypto_provider;
use controller::prometheus::describe;
use prometheus_http_query::response::Data;
use prometheus_http_query::Client;
use std::collections::HashMap;
use std::time::Duration;

/// What to ask for: unix seconds, the resolution, and the `rate()` window of each point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    pub step_secs: u64,
    pub window_secs: u64,
}

/// Range queries may take longer than the controller's instant ones; a hung server still fails.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The three panels' queries for the rollout entry `entry`: canary share of requests, success rate
/// per cohort, p99 upstream latency per cohort.
pub fn queries(entry: &str, window_secs: u64) -> [String; 3] {
    let all = format!("sluice_rollout=\"{entry}\"");
    let w = format!("{window_secs}s");
    let requests = format!("sum by (sluice_cohort) (rate(sluice_requests_total{{{all}}}[{w}]))");
    let errors = format!("sum by (sluice_cohort) (rate(sluice_responses_5xx_total{{{all}}}[{w}]))");
    [
        // A cohort without a series yet counts 0, so the share is 0% rather than absent. The share
        // is of the users' requests: a mirror stage's copies (cohort `mirror`) are no user's.
        format!(
            "100 * (sum(rate(sluice_requests_total{{{all},sluice_cohort=\"canary\"}}[{w}])) or vector(0)) \
             / sum(rate(sluice_requests_total{{{all},sluice_cohort=~\"stable|canary\"}}[{w}]))"
        ),
        // A cohort that never failed may have no 5xx series: count it as 0 errors, not as no data.
        format!("100 * (1 - ({errors} or 0 * {requests}) / {requests})"),
        format!(
            "histogram_quantile(0.99, sum by (sluice_cohort, le) \
             (rate(sluice_upstream_latency_ms_bucket{{{all}}}[{w}])))"
        ),
    ]
}

/// Fetches the three panels. Any failure names the server and the query.
pub async fn fetch(url: &str, entry: &str, range: Range) -> Result<Vec<Panel>, String> {
    install_crypto_provider();
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("Prometheus {url}: {e}"))?;
    let client = Client::from(http, url).map_err(|e| format!("Prometheus URL {url:?}: {e}"))?;
    let [share, success, latency] = queries(entry, range.window_secs);
    let titles = [
        ("canary share of requests", "%"),
        ("success rate", "%"),
        ("p99 upstream latency", "ms"),
    ];
    let mut panels = Vec::new();
    for (query, (title, unit)) in [share, success, latency].into_iter().zip(titles) {
        let start = i64::try_from(range.start).unwrap_or(i64::MAX);
        let end = i64::try_from(range.end).unwrap_or(i64::MAX);
        let answer = client
            .query_range(&query, start, end, range.step_secs as f64)
            .get()
            .await
            .map_err(|e| {
                format!(
                    "Prometheus {url}: {} (query: {query})",
                    describe(&e, TIMEOUT)
                )
            })?;
        panels.push(Panel {
            title: title.to_string(),
            unit: unit.to_string(),
            series: series_of(answer.data()),
        });
    }
    Ok(panels)
}

/// Each series of a matrix, named by its cohort (`share` for the aggregated one), canary first.
fn series_of(data: &Data) -> Vec<Series> {
    let Data::Matrix(vectors) = data else {
        return Vec::new();
    };
    let mut out: Vec<Series> = vectors
        .iter()
        .map(|v| Series {
            name: cohort_of(v.metric()),
            points: v
                .samples()
                .iter()
                .filter(|s| s.value().is_finite())
                .map(|s| (s.timestamp(), s.value()))
                .collect(),
        })
        .collect();
    out.sort_by_key(|s| (s.name != "canary", s.name.clone()));
    out
}

fn cohort_of(labels: &HashMap<String, String>) -> String {
    labels
        .get("sluice_cohort")
        .cloned()
        .unwrap_or_else(|| "share".to_string())
}
