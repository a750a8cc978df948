//! The command line: the clap tree, and `Args::run`, which dispatches each command to the crate that
//! does the work.

use crate::cluster::KubeFlags;
use crate::render;
use crate::validate::{self, ValidateArgs};
// Declared here, beside the command it serves: `crate::args::timeline`.
#[path = "timeline/mod.rs"]
pub(crate) mod timeline;
use clap::{Parser, Subcommand, ValueEnum};
use controller::local::files::{load_rollout, StateFile};
use controller::local::{self, LocalOptions};
use controller::{kube, Result};
use rollout::command::Command;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Progressive delivery inside the service mesh"
)]
pub struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the controller: in Kubernetes (watches CohortRollouts), or with --local against an ECDS file.
    Controller {
        /// Local mode: the CohortRollout YAML to drive.
        #[arg(long, value_name = "ROLLOUT.yaml")]
        local: Option<PathBuf>,
        #[arg(
            long,
            env = "SLUICE_PROMETHEUS",
            default_value = "http://127.0.0.1:9090"
        )]
        prometheus: String,
        /// Local mode: the Envoy ECDS file carrying the sluice config (the home of the shared settings).
        #[arg(long, value_name = "PATH", requires = "local")]
        ecds_file: Option<PathBuf>,
        /// Local mode: where status is kept.
        #[arg(long, value_name = "PATH", requires = "local")]
        state_file: Option<PathBuf>,
        /// Kubernetes mode: /metrics and /healthz.
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
        /// Kubernetes mode: watch one namespace only.
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long, env = "POD_NAMESPACE", default_value = "sluice-system")]
        lease_namespace: String,
        #[arg(long, env = "POD_NAME", default_value = "sluice-controller")]
        identity: String,
    },
    /// Show every rollout's phase, step and stage, why it holds, and its last analysis: each check's
    /// value against its threshold, samples and verdict.
    Status {
        /// Local mode state file; without it, CohortRollouts in Kubernetes.
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Local mode: a rollout file the controller drives (`controller --local`), whose spec has the
        /// checks' thresholds; the state file keeps status only. Repeat for several rollouts.
        #[arg(long, value_name = "ROLLOUT.yaml", requires = "state_file")]
        rollout: Vec<PathBuf>,
        /// Kubernetes mode; without -n, every namespace.
        #[command(flatten)]
        kube: KubeFlags,
        #[command(flatten)]
        view: StatusView,
    },
    /// Hold a rollout at its step until resumed.
    Pause(Target),
    /// Resume a paused rollout (through a gate into the next step), or restart a rolled-back one.
    Resume(Target),
    /// Send every user to the canary now.
    Promote(Target),
    /// Send every user back to stable now; the canary keeps running.
    Abort(Target),
    /// For each step: eligible cities, share of the city table's population, expected share of users.
    Plan {
        rollout: PathBuf,
        /// A sluice config carrying the city table: JSON (e.g. envoy-configs/sluice-config.json), or
        /// the WasmPlugin or TrafficExtension YAML carrying one (deploy/example/wasmplugin.yaml).
        #[arg(long)]
        cities: PathBuf,
    },
    /// Print a user's hash and bucket, exactly as the filter computes them.
    Bucket {
        #[arg(long)]
        salt: String,
        #[arg(long)]
        user: String,
        #[arg(long, value_enum, default_value = "basis-points")]
        mode: Mode,
    },
    /// Print the CohortRollout CRD.
    Crd,
    /// Draw a rollout's timeline (canary share, success rate, p99 latency; steps, failed checks, marks,
    /// the rollback) from Prometheus and status history to SVG/PNG, and print a summary.
    #[command(group(clap::ArgGroup::new("status_from").required(true).args(["state_file", "kube"])))]
    Timeline {
        #[command(flatten)]
        args: Box<timeline::TimelineArgs>,
        /// Read status from the CohortRollout in Kubernetes instead of a state file.
        #[arg(long)]
        kube: bool,
        #[command(flatten)]
        cluster: KubeFlags,
    },
    /// Check sluice configs, WasmPlugins, TrafficExtensions and CohortRollouts before applying them,
    /// offline: the errors the filter and the controller would give, and what the documents given
    /// together would refuse (two CohortRollouts owning one entry, entries matching the same requests).
    Validate {
        #[command(flatten)]
        args: ValidateArgs,
        /// The namespace of documents that name none (as `kubectl apply -n`).
        #[arg(long, short, default_value = "default")]
        namespace: String,
    },
}

/// `sluice status`'s view: refreshed or once, a table or the objects.
#[derive(clap::Args)]
pub struct StatusView {
    /// Print the status again every SECONDS (2 when not given) until Ctrl-C.
    #[arg(long, short, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "2",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub watch: Option<u64>,
    /// `json` and `yaml` print the status objects, for scripts.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: render::Format,
}

#[derive(clap::Args)]
struct Target {
    name: String,
    #[arg(long)]
    state_file: Option<PathBuf>,
    /// Kubernetes mode.
    #[command(flatten)]
    kube: KubeFlags,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    BasisPoints,
    Unleash,
}

impl Args {
    pub async fn run(self) -> Result<()> {
        match self.command {
            Cmd::Controller {
                local: Some(rollout_file),
                prometheus,
                ecds_file,
                state_file,
                ..
            } => {
                local::run(LocalOptions {
                    rollout_file,
                    prometheus,
                    ecds_file: ecds_file.unwrap_or_else(|| ".run/ecds/sluice.json".into()),
                    state_file: state_file.unwrap_or_else(|| ".run/sluice-state.json".into()),
                })
                .await
            }
            Cmd::Controller {
                local: None,
                prometheus,
                listen,
                namespace,
                lease_namespace,
                identity,
                ..
            } => {
                kube::run(kube::KubeOptions {
                    prometheus,
                    listen,
                    namespace,
                    lease_namespace,
                    identity,
                })
                .await
            }
            Cmd::Status {
                state_file,
                rollout,
                kube,
                view,
            } => {
                let source = render::StatusSource {
                    state_file,
                    rollout_files: rollout,
                    all_namespaces: kube.namespace.is_none(),
                    kube,
                    cluster: Default::default(),
                };
                status(source, view).await
            }
            Cmd::Pause(t) => send(&t.name, t.state_file, &t.kube, Command::Pause).await,
            Cmd::Resume(t) => send(&t.name, t.state_file, &t.kube, Command::Resume).await,
            Cmd::Promote(t) => send(&t.name, t.state_file, &t.kube, Command::Promote).await,
            Cmd::Abort(t) => send(&t.name, t.state_file, &t.kube, Command::Abort).await,
            Cmd::Plan { rollout, cities } => {
                print!("{}", plan(&rollout, &cities)?);
                Ok(())
            }
            Cmd::Validate { args, namespace } => validate::run(&args, &namespace),
            Cmd::Bucket { salt, user, mode } => {
                let h = cohort::murmur3::user_hash(salt.as_bytes(), user.as_bytes());
                match mode {
                    Mode::BasisPoints => println!(
                        "h={h} bucket={} (canary iff bucket < percent*100)",
                        cohort::murmur3::bucket_basis_points(h)
                    ),
                    Mode::Unleash => println!(
                        "h={h} bucket={} (canary iff bucket <= percent)",
                        cohort::murmur3::bucket_unleash(h)
                    ),
                }
                Ok(())
            }
            Cmd::Timeline {
                mut args,
                kube,
                cluster,
            } => {
                args.cluster = kube.then_some(cluster);
                timeline::run(*args).await
            }
            Cmd::Crd => {
                print!("{}", kube::crd::crd_yaml()?);
                Ok(())
            }
        }
    }
}

/// `status`: once, or every `--watch` seconds.
pub(crate) async fn status(source: render::StatusSource, view: StatusView) -> Result<()> {
    let output = view.output;
    match view.watch {
        None => {
            print!("{}", source.render(output).await?);
            Ok(())
        }
        Some(seconds) => {
            let every = std::time::Duration::from_secs(seconds);
            render::watch::watch(every, output, || source.render(output)).await
        }
    }
}

/// `pause|resume|promote|abort NAME`: to the state file, or the CohortRollout's annotation.
pub(crate) async fn send(
    name: &str,
    state_file: Option<PathBuf>,
    flags: &KubeFlags,
    command: Command,
) -> Result<()> {
    let Some(path) = state_file else {
        let cluster = flags.connect().await?;
        let id = controller::schedule::new_command_id();
        let client = cluster.client.clone();
        kube::commands::send_command_with(client, &cluster.namespace, name, command, &id)
            .await
            .map_err(|e| {
                let what = format!(
                    "sending {command} to CohortRollout {}/{name}",
                    cluster.namespace
                );
                cluster.failed(&what, e)
            })?;
        println!(
            "{command} sent to CohortRollout {}/{name}",
            cluster.namespace
        );
        return Ok(());
    };
    StateFile { path }.send_command(name, command)?;
    println!("{command} sent to {name}");
    Ok(())
}

pub(crate) fn plan(rollout: &Path, cities: &Path) -> Result<String> {
    let rollout = load_rollout(rollout)?;
    let steps = rollout::plan::steps(&rollout.spec)?;
    let table = validate::sluice_config(cities)?.cities;
    Ok(render::plan_table(
        &steps,
        &rollout::plan::exposure(&steps, &table),
        rollout.spec.target.canary_cluster.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::CommandFactory;
    use rollout::command::Command;

    /// The CLI's words are the command enum's: a new command cannot ship without its subcommand.
    #[test]
    fn every_command_has_a_subcommand_of_its_own_word() {
        let cli = Args::command();
        for command in Command::ALL {
            let sub = cli.find_subcommand(command.as_str());
            assert!(sub.is_some(), "no `sluice {command}`");
        }
    }
}
