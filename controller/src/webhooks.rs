//! `AlertSink` for Slack-compatible webhooks: each alert is POSTed as JSON, a human `text` plus the
//! structured fields.

use rollout::ports::{Alert, AlertSink};
use rollout::{Error, Result};
use std::time::Duration;

/// A hung webhook must not hold up the round that alerts.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

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
    async fn send(&self, alert: &Alert) -> Result<()> {
        for url in &self.urls {
            let response = self
                .client
                .post(url)
                .json(alert)
                .send()
                .await
                .map_err(|e| Error::Alert(format!("POST {url}: {e}")))?;
            if !response.status().is_success() {
                return Err(Error::Alert(format!(
                    "POST {url}: HTTP {}",
                    response.status()
                )));
            }
        }
        Ok(())
    }
}
