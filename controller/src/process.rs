//! Process-wide set-up, written once for both modes and the CLI.

use rollout::Error;

/// reqwest and kube use rustls without a default provider and panic when they build a client while
/// none is installed; install the workspace's (ring) unless the binary already chose one.
pub fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: any provider will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends before killing a pod).
pub async fn shutdown_signal() -> crate::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|source| Error::Io {
        path: "SIGTERM handler".into(),
        source,
    })?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
