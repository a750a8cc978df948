//! Local mode: the same round as in Kubernetes, against an Envoy ECDS file, a state file and a real
//! Prometheus, on the same schedule. `driver` runs each tick; `rollout_file` reads the CohortRollout
//! YAML again every tick; `queue` holds the commands people send; `stable` sends users to stable
//! without a round; `files` and `durable` are the files and how they are written.

mod driver;
pub mod durable;
pub mod files;
pub mod queue;
pub mod rollout_file;
pub mod stable;

pub use driver::LocalOptions;
use driver::{Driver, Tick};
use std::time::Duration;

/// Runs rounds for the rollout in `opts.rollout_file` until Ctrl-C or SIGTERM, or until the rollout
/// leaves the file (its users are sent to stable first; then this returns `Ok`).
pub async fn run(opts: LocalOptions) -> crate::Result<()> {
    let mut driver = Driver::new(&opts)?;
    let tick = driver.interval().min(Duration::from_millis(200));
    tracing::info!(rollout = driver.name(), interval = ?driver.interval(), ecds = %opts.ecds_file.display(), "local controller started");
    let shutdown = crate::process::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        if let Tick::Stopped(said) = driver.tick().await {
            tracing::warn!(rollout = driver.name(), "{said}");
            return Ok(());
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
