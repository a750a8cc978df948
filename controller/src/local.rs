//! Local mode: the same reconciler against an Envoy ECDS file, a state file and a real Prometheus.

use crate::error::{Error, Result};
use crate::machine::Command;
use crate::prometheus::Prometheus;
use crate::reconcile::{self, parse_duration, Io, Round, Target};
use crate::sinks::{StateFile, Webhooks};
use crate::spec::CohortRollout;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub struct LocalOptions {
    pub rollout_file: PathBuf,
    pub prometheus: String,
    pub ecds_file: PathBuf,
    pub state_file: PathBuf,
}

pub fn load_rollout(path: &Path) -> Result<CohortRollout> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|e| Error::Parse {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn parse_command(word: &str) -> Option<Command> {
    match word.trim() {
        "pause" => Some(Command::Pause),
        "resume" => Some(Command::Resume),
        "promote" => Some(Command::Promote),
        "abort" => Some(Command::Abort),
        _ => None,
    }
}

/// Leaves a command for the running local controller.
pub fn send_command(state_file: &Path, rollout: &str, command: &str) -> Result<()> {
    let store = StateFile {
        path: state_file.to_path_buf(),
    };
    let id = format!(
        "{}-{}",
        command,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    crate::sinks::write_atomic(
        &store.command_path(rollout),
        format!("{command}/{id}").as_bytes(),
    )
}

fn take_command(store: &StateFile, rollout: &str) -> Option<(String, Command)> {
    let path = store.command_path(rollout);
    let text = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    let (word, id) = text.trim().split_once('/')?;
    match parse_command(word) {
        Some(command) => Some((id.to_string(), command)),
        None => {
            tracing::warn!(rollout, "ignoring unknown command {word:?}");
            None
        }
    }
}

pub async fn run(opts: LocalOptions) -> Result<()> {
    let rollout = load_rollout(&opts.rollout_file)?;
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let namespace = rollout
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "local".into());
    let interval = parse_duration("spec.analysis.interval", &rollout.spec.analysis.interval)?;
    let metrics = Prometheus::new(&opts.prometheus)?;
    let config = crate::sinks::EcdsFile {
        path: opts.ecds_file.clone(),
    };
    let status = StateFile {
        path: opts.state_file.clone(),
    };
    let alerts = Webhooks {
        urls: rollout.spec.alerts.webhooks.clone(),
        client: reqwest::Client::new(),
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

    // The first analysis comes one full interval after start, also after a restart: no double step.
    let mut last_analysis = Instant::now();
    let mut first = true;
    let tick = interval.min(Duration::from_millis(200));
    loop {
        let command = take_command(&status, &name);
        let analyse = last_analysis.elapsed() >= interval;
        if analyse || command.is_some() {
            // After a command (resume through a gate, say) the stage is judged on a whole interval of
            // its own traffic.
            last_analysis = Instant::now();
        }
        if first || analyse || command.is_some() {
            first = false;
            let round = Round {
                command,
                analyse,
                now: unix_now(),
            };
            match reconcile::reconcile(&io, &target, &round).await {
                Ok(outcome) => {
                    let s = &outcome.status;
                    tracing::info!(rollout = name, phase = ?s.phase, step = s.current_step, generation = s.config_generation, action = ?outcome.action, "round");
                }
                Err(e) => tracing::error!(rollout = name, "round failed: {e}"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("stopping");
                return Ok(());
            }
        }
    }
}

/// `sluice status` in local mode: the same table as in Kubernetes.
pub fn status_table(state_file: &Path) -> Result<String> {
    let doc = StateFile {
        path: state_file.to_path_buf(),
    }
    .read()?;
    let rows = doc
        .rollouts
        .iter()
        .map(|(name, status)| (String::new(), name.clone(), Some(status)));
    Ok(crate::kube_commands::render_status_rows(rows, false))
}
