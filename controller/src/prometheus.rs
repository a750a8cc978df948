//! `MetricsSource` over Prometheus' HTTP API (instant queries). Every failure becomes an `Err` naming
//! the server and the cause, so `analyse` records an Error verdict (which holds the step) and the
//! status tells an operator which Prometheus to look at.

use crate::process::install_crypto_provider;
use prometheus_http_query::response::Data;
use prometheus_http_query::{Client, Error as QueryError};
use rollout::ports::MetricsSource;
use rollout::{Error, Result};
use std::time::Duration;

/// Long enough for a busy Prometheus, short enough that a hung one fails the round instead of
/// stalling the controller's loop.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Prometheus {
    client: Client,
    url: String,
    timeout: Duration,
}

impl Prometheus {
    /// A client for the Prometheus at `url` (e.g. `http://prometheus.monitoring:9090`), with
    /// [`DEFAULT_TIMEOUT`] per query.
    pub fn new(url: &str) -> Result<Self> {
        Self::with_timeout(url, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self> {
        let bad = |why: String| Error::Metrics(format!("Prometheus URL {url:?}: {why}"));
        // Parse first: the crate's own parse error does not say which URL was wrong.
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        install_crypto_provider();
        // reqwest's own timeout covers connect, headers and body: a server that accepts the
        // connection and never answers is cut off too.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| bad(chain(&e)))?;
        let client = Client::from(http, url).map_err(|e| bad(chain(&e)))?;
        Ok(Prometheus {
            client,
            url: url.to_string(),
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// An error with its causes, e.g. "failed to send request to server: client error (Connect):
/// tcp connect error: Connection refused (os error 111)".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    append_sources(&mut out, e.source());
    out
}

fn append_sources(out: &mut String, mut source: Option<&(dyn std::error::Error + 'static)>) {
    while let Some(s) = source {
        let msg = s.to_string();
        // hyper and reqwest now and then repeat the inner error in their own message.
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
}

/// Why a query failed. reqwest's own message repeats the whole request URL, query string
/// included; the status names the URL and the query already, so only the causes are kept. Also
/// what `sluice timeline` says of a failed range query.
pub fn describe(e: &QueryError, timeout: Duration) -> String {
    let QueryError::Client(client) = e else {
        // Prometheus' own answer, e.g. "bad_data: 1:10: parse error: unclosed left parenthesis".
        return chain(e);
    };
    let Some(http) = client.inner() else {
        return chain(e);
    };
    let mut out = client.to_string();
    if http.is_timeout() {
        out.push_str(&format!(": no answer within {timeout:?}"));
    }
    if let Some(status) = http.status() {
        out.push_str(&format!(": HTTP {status}"));
    }
    append_sources(&mut out, std::error::Error::source(http));
    out
}

/// The one value of an instant query result. An SLI is one number: a vector with several series
/// means the query lacks an aggregation, and picking one of them would judge the wrong thing.
fn single_value(data: &Data) -> Result<Option<f64>, String> {
    match data {
        Data::Scalar(sample) => Ok(Some(sample.value())),
        Data::Vector(v) => match v.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.sample().value())),
            many => Err(format!(
                "the query returned {} series ({}); it must aggregate to one series, e.g. with sum(...)",
                many.len(),
                many.iter()
                    .take(3)
                    .map(|s| series_name(s.metric()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
        Data::Matrix(_) => Err(
            "the query returned a range vector; an SLI must be an instant value, e.g. rate(x[5m])"
                .into(),
        ),
    }
}

/// `name{label="value",...}`, labels sorted, as Prometheus shows a series.
fn series_name(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<_> = labels.iter().filter(|(k, _)| *k != "__name__").collect();
    pairs.sort();
    let inner: Vec<_> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    let name = labels.get("__name__").map_or("", String::as_str);
    format!("{name}{{{}}}", inner.join(","))
}

impl MetricsSource for Prometheus {
    async fn query(&self, promql: &str) -> Result<Option<f64>, String> {
        // Prometheus' own evaluation timeout, so it stops work the controller no longer waits for.
        let eval_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX);
        let result = self.client.query(promql).timeout(eval_ms).get().await;
        match result {
            Ok(r) => single_value(r.data()).map_err(|e| format!("Prometheus {}: {e}", self.url)),
            Err(e) => Err(format!(
                "Prometheus {}: {}",
                self.url,
                describe(&e, self.timeout)
            )),
        }
    }
}
