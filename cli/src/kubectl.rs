//! `kubectl sluice ...`: the same binary installed as `kubectl-sluice` (a kubectl plugin), speaking
//! kubectl's conventions: `-n/--namespace` (default: the context's), `--context`, `--kubeconfig` and
//! `KUBECONFIG`, before or after the command; `status -A` for every namespace. The work is the
//! `sluice` commands'.

use crate::args::timeline::{self, TimelineArgs};
use crate::args::{plan, send, status, StatusView};
use crate::cluster::KubeFlags;
use crate::render;
use crate::validate::{self, ValidateArgs};
use clap::{Parser, Subcommand};
use controller::Result;
use rollout::command::Command;
use std::path::PathBuf;

/// The executable's name that makes it the plugin: kubectl runs `kubectl-NAME` for `kubectl NAME`.
pub const PLUGIN_NAME: &str = "kubectl-sluice";

#[derive(Parser)]
#[command(
    name = "kubectl sluice",
    bin_name = "kubectl sluice",
    version,
    about = "sluice rollouts, as a kubectl plugin: status, pause, resume, promote, abort, plan, timeline, validate"
)]
pub struct KubectlArgs {
    #[command(flatten)]
    kube: KubeFlags,
    #[command(subcommand)]
    command: KubectlCmd,
}

#[derive(Subcommand)]
enum KubectlCmd {
    /// The CohortRollouts of the namespace (-A: every namespace): phase, step, stage, why each holds,
    /// and its last analysis.
    Status {
        /// Every namespace.
        #[arg(long, short = 'A')]
        all_namespaces: bool,
        #[command(flatten)]
        view: StatusView,
    },
    /// Hold a rollout at its step until resumed.
    Pause { name: String },
    /// Resume a paused rollout (through a gate into the next step), or restart a rolled-back one.
    Resume { name: String },
    /// Send every user to the canary now.
    Promote { name: String },
    /// Send every user back to stable now; the canary keeps running.
    Abort { name: String },
    /// For each step of a CohortRollout file: eligible cities, share of the population, of users.
    Plan {
        rollout: PathBuf,
        /// A sluice config carrying the city table: JSON, or the WasmPlugin or TrafficExtension YAML
        /// carrying one.
        #[arg(long)]
        cities: PathBuf,
    },
    /// Draw a rollout's timeline from Prometheus and its status history, and print a summary.
    Timeline(Box<TimelineArgs>),
    /// Check sluice configs, WasmPlugins, TrafficExtensions and CohortRollouts before applying them,
    /// offline (documents naming no namespace are in -n's).
    Validate(ValidateArgs),
}

/// Whether this process was started as the plugin (argv[0]'s file name, as kubectl runs it).
pub fn invoked_as_plugin(argv0: Option<std::ffi::OsString>) -> bool {
    let name = argv0.map(PathBuf::from);
    let stem = name
        .as_ref()
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str());
    stem == Some(PLUGIN_NAME)
}

impl KubectlArgs {
    pub async fn run(self) -> Result<()> {
        let flags = self.kube;
        let (command, name) = match self.command {
            KubectlCmd::Status {
                all_namespaces,
                view,
            } => {
                let source = render::StatusSource {
                    state_file: None,
                    rollout_files: Vec::new(),
                    kube: flags,
                    all_namespaces,
                    cluster: Default::default(),
                };
                return status(source, view).await;
            }
            KubectlCmd::Pause { name } => (Command::Pause, name),
            KubectlCmd::Resume { name } => (Command::Resume, name),
            KubectlCmd::Promote { name } => (Command::Promote, name),
            KubectlCmd::Abort { name } => (Command::Abort, name),
            KubectlCmd::Plan { rollout, cities } => {
                print!("{}", plan(&rollout, &cities)?);
                return Ok(());
            }
            KubectlCmd::Timeline(mut args) => {
                args.cluster = Some(flags);
                return timeline::run(*args).await;
            }
            KubectlCmd::Validate(args) => {
                return validate::run(&args, &flags.offline_namespace());
            }
        };
        send(&name, None, &flags, command).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The plugin offers every command people send, under the command's own word.
    #[test]
    fn every_command_is_a_plugin_subcommand() {
        let cli = KubectlArgs::command();
        for command in Command::ALL {
            assert!(cli.find_subcommand(command.as_str()).is_some(), "{command}");
        }
    }

    #[test]
    fn the_plugin_is_known_by_its_executable_name_wherever_it_lies() {
        let named = |s: &str| invoked_as_plugin(Some(s.into()));
        assert!(named("/home/me/.local/bin/kubectl-sluice"));
        assert!(named("kubectl-sluice"));
        assert!(!named("/usr/bin/sluice"));
        assert!(!named("kubectl-sluicer"));
        assert!(!invoked_as_plugin(None));
    }

    #[test]
    fn namespace_and_context_go_before_or_after_the_command() {
        for argv in [
            [
                "kubectl-sluice",
                "-n",
                "shop",
                "--context",
                "kind",
                "pause",
                "web",
            ],
            [
                "kubectl-sluice",
                "pause",
                "web",
                "-n",
                "shop",
                "--context",
                "kind",
            ],
        ] {
            let args = KubectlArgs::try_parse_from(argv).unwrap();
            assert_eq!(args.kube.namespace.as_deref(), Some("shop"));
            assert_eq!(args.kube.context.as_deref(), Some("kind"));
        }
    }
}
