//! Local mode: the same round as in Kubernetes, against an Envoy ECDS file, a state file and a real
//! Prometheus, on the same schedule.

pub mod files;

use crate::prometheus::Prometheus;
use crate::schedule::AnalysisClock;
use crate::webhooks::{self, Webhooks};
use files::{load_rollout, EcdsFile, StateFile};
use rollout::round::{self, Io, Target};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct LocalOptions {
    pub rollout_file: PathBuf,
    pub prometheus: String,
    pub ecds_file: PathBuf,
    pub state_file: PathBuf,
}

/// Runs rounds for the rollout in `opts.rollout_file` until Ctrl-C or SIGTERM.
pub async fn run(opts: LocalOptions) -> crate::Result<()> {
    let rollout = load_rollout(&opts.rollout_file)?;
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let namespace = rollout
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "local".into());
    let interval = rollout::plan::interval(&rollout.spec)?;
    let metrics = Prometheus::new(&opts.prometheus)?;
    let config = EcdsFile {
        path: opts.ecds_file.clone(),
    };
    let status = StateFile {
        path: opts.state_file.clone(),
    };
    let alerts = Webhooks {
        urls: rollout.spec.alerts.webhooks.clone(),
        client: webhooks::client()?,
    };
    let io = Io {
        metrics: &metrics,
        config: &config,
        status: &status,
        alerts: &alerts,
    };
    let target = Target {
        name: &name,
        namespace: &namespace,
        spec: &rollout.spec,
        generation: rollout.metadata.generation,
    };
    tracing::info!(rollout = name, ?interval, ecds = %opts.ecds_file.display(), "local controller started");

    let key = (namespace.clone(), name.clone());
    let clock = AnalysisClock::default();
    let tick = interval.min(Duration::from_millis(200));
    let mut first = true;
    let shutdown = crate::process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        // Each command file is a fresh invocation: none was handled before.
        let command = status.take_command(&name);
        let round = clock.round(&key, interval, command, None, Instant::now());
        if first || round.analyse || round.command.is_some() {
            first = false;
            match round::reconcile(&io, &target, &round).await {
                Ok(outcome) => {
                    clock.finished(&key, &outcome, Instant::now());
                    let s = &outcome.status;
                    tracing::info!(rollout = name, phase = ?s.phase, step = s.current_step, generation = s.config_generation, action = ?outcome.action, "round");
                }
                Err(e) => tracing::error!(rollout = name, "round failed: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            stopped = &mut shutdown => {
                tracing::info!("stopping");
                return stopped;
            }
        }
    }
}
