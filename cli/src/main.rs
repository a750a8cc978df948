//! `sluice`: the controller and the CLI for people and pipelines. Thin: `args` parses and dispatches,
//! `render` draws tables, the work lives in the `controller` and `rollout` crates. Installed as
//! `kubectl-sluice`, the same binary is a kubectl plugin (`kubectl`), with kubectl's flags.

mod args;
mod cluster;
mod kubectl;
mod render;
mod validate;

use clap::Parser;
use std::process::ExitCode;

// As the controller benchmark measures it (bench/src/bin/rollouts_bench.rs uses the same).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let plugin = kubectl::invoked_as_plugin(std::env::args_os().next());
    // The plugin reports a failed request itself, naming the context: kube's own log line would say
    // it twice, without the context.
    let quiet = if plugin {
        "warn,kube_client=off"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| quiet.into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs in files and collectors stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Parsed before the runtime starts: --help and usage errors print and exit here.
    let work = if plugin {
        Work::Kubectl(kubectl::KubectlArgs::parse())
    } else {
        Work::Sluice(args::Args::parse())
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let done = match work {
        Work::Sluice(args) => runtime.block_on(args.run()),
        Work::Kubectl(args) => runtime.block_on(args.run()),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        // kubectl's own words for a failed command.
        Err(e) if plugin => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Work {
    Sluice(args::Args),
    Kubectl(kubectl::KubectlArgs),
}
