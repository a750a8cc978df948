//! `sluice`: the controller and the CLI for people and pipelines. Thin: everything lives in the library.

use clap::{Parser, Subcommand, ValueEnum};
use sluice_controller::local::{self, LocalOptions};
use sluice_controller::{kube_mode, plan, Result};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Progressive delivery inside the service mesh"
)]
struct Cli {
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
    /// Show every rollout's phase, step and stage.
    Status {
        /// Local mode state file; without it, CohortRollouts in Kubernetes.
        #[arg(long)]
        state_file: Option<PathBuf>,
        #[arg(long, short)]
        namespace: Option<String>,
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
        /// A sluice config JSON carrying the city table (e.g. envoy-configs/sluice-config.json).
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
}

#[derive(clap::Args)]
struct Target {
    name: String,
    #[arg(long)]
    state_file: Option<PathBuf>,
    #[arg(long, short, default_value = "default")]
    namespace: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    BasisPoints,
    Unleash,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs in files and collectors stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Controller {
            local: Some(rollout_file),
            prometheus,
            ecds_file,
            state_file,
            ..
        } => {
            let ecds_file = ecds_file.unwrap_or_else(|| ".run/ecds/sluice.json".into());
            let state_file = state_file.unwrap_or_else(|| ".run/sluice-state.json".into());
            local::run(LocalOptions {
                rollout_file,
                prometheus,
                ecds_file,
                state_file,
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
            kube_mode::run(kube_mode::KubeOptions {
                prometheus,
                listen,
                namespace,
                lease_namespace,
                identity,
            })
            .await
        }
        Cmd::Status {
            state_file: Some(path),
            ..
        } => {
            print!("{}", local::status_table(&path)?);
            Ok(())
        }
        Cmd::Status {
            state_file: None,
            namespace,
        } => {
            print!("{}", kube_mode::status_table(namespace.as_deref()).await?);
            Ok(())
        }
        Cmd::Pause(t) => send(t, "pause").await,
        Cmd::Resume(t) => send(t, "resume").await,
        Cmd::Promote(t) => send(t, "promote").await,
        Cmd::Abort(t) => send(t, "abort").await,
        Cmd::Plan { rollout, cities } => {
            print!("{}", plan_report(&rollout, &cities)?);
            Ok(())
        }
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
        Cmd::Crd => {
            print!("{}", kube_mode::crd_yaml()?);
            Ok(())
        }
    }
}

async fn send(t: Target, word: &str) -> Result<()> {
    match &t.state_file {
        Some(path) => local::send_command(path, &t.name, word)?,
        None => {
            let command = local::parse_command(word)
                .ok_or_else(|| sluice_controller::Error::invalid("command", word, "unknown"))?;
            kube_mode::send_command(&t.namespace, &t.name, command).await?
        }
    }
    println!("{word} sent to {}", t.name);
    Ok(())
}

fn plan_report(rollout: &std::path::Path, cities: &std::path::Path) -> Result<String> {
    let rollout = local::load_rollout(rollout)?;
    let steps = plan::steps(&rollout.spec)?;
    let bytes = std::fs::read(cities).map_err(|source| sluice_controller::Error::Io {
        path: cities.display().to_string(),
        source,
    })?;
    let table = cohort::parse(&bytes)?.cities;
    let mut out = format!(
        "{:>4} {:>8} {:<24} {:>10} {:>7} {:>11} {:>10}  {}\n",
        "STEP", "PERCENT", "REGIONS", "CUTOFF", "CITIES", "POPULATION", "USERS", "GATE"
    );
    for (step, e) in steps.iter().zip(plan::exposure(&steps, &table)) {
        let regions = if step.regions.is_empty() {
            "*".to_string()
        } else {
            step.regions.join(",")
        };
        let cutoff = step
            .max_city_population
            .map_or("*".to_string(), |c| c.to_string());
        out.push_str(&format!(
            "{:>4} {:>8} {:<24} {:>10} {:>7} {:>10.2}% {:>9.4}%  {}\n",
            e.step,
            step.percent,
            regions,
            cutoff,
            e.eligible_cities.len(),
            e.population_share * 100.0,
            e.user_share * 100.0,
            if step.pause_before {
                "pause before"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}
