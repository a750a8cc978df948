//! `AlertSink` for Slack-compatible webhooks: each alert is POSTed as JSON, a human `text` plus the
//! structured fields.

use rollout::ports::{Alert, AlertSink};
use rollout::{Error, Result};
use std::time::Duration;

/// A hung webhook must not hold up the round that alerts (a Kubernetes round is cut at 8 s, and its
/// analysis gets half of that): the alert stays in the status outbox and is retried.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Webhooks {
    pub urls: Vec<String>,
    pub client: reqwest::Client,
}

/// The HTTP client for webhooks, with [`WEBHOOK_TIMEOUT`].
pub fn client() -> Result<reqwest::Client> {
    crate::process::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .build()
        .map_err(|e| Error::Alert(format!("webhook client: {e}")))
}

impl AlertSink for Webhooks {
    /// Posts to every URL at once; one failing URL never stops the others. Fails naming each URL
    /// that did not take the alert (the round keeps it and retries).
    async fn send(&self, alert: &Alert) -> Result<()> {
        let posts = self.urls.iter().map(|url| self.post(url, alert));
        let failures: Vec<String> = futures::future::join_all(posts)
            .await
            .into_iter()
            .filter_map(std::result::Result::err)
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Alert(failures.join("; ")))
        }
    }
}

impl Webhooks {
    async fn post(&self, url: &str, alert: &Alert) -> std::result::Result<(), String> {
        let response = self
            .client
            .post(url)
            .json(alert)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("POST {url}: HTTP {}", response.status()));
        }
        Ok(())
    }
}
