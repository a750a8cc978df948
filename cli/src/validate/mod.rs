//! `sluice validate FILE...`: what the filter and the controller would refuse, found before anything is
//! applied, offline. Each sluice config is parsed and compiled exactly as the filter does (bare, or in
//! a WasmPlugin's `spec.pluginConfig` or a TrafficExtension's `spec.wasm.pluginConfig`); each
//! CohortRollout is read against the CRD and checked as a round checks its spec (target, steps, the
//! monotone plan, the policy). The documents given together are then checked as the controller would
//! meet them (`cross`): entries owned twice, entries deciding the same requests, each step's entry
//! merged into its target's config.

mod configs;
mod cross;
mod load;
mod report;
mod schema;
mod specs;

use clap::ValueEnum;
use load::Item;
use report::Report;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Files, or directories (their *.yaml, *.yml and *.json, recursively); `-` reads standard input
    /// (`kustomize build DIR | sluice validate -`). Give together what is applied together: the
    /// cross-document checks see only these.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// `json`: an array of {file, document, object, path, value, message, severity}, for CI
    /// annotations.
    #[arg(long, short, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Prints every finding; an error when any would be refused. `namespace`: of documents naming none.
pub fn run(args: &ValidateArgs, namespace: &str) -> controller::Result<()> {
    let mut report = Report::default();
    let mut configs = Vec::new();
    let mut rollouts = Vec::new();
    for file in files(&args.files, &mut report) {
        for item in load::load(&file, namespace, &mut report) {
            match item {
                Item::Config(c) => configs.push(c),
                Item::Rollout(r) => rollouts.push(*r),
            }
        }
    }
    let given = format!(
        "{} sluice config(s) and {} CohortRollout(s)",
        configs.len(),
        rollouts.len()
    );
    let rollouts = specs::plans(rollouts, &mut report);
    let configs = configs::check(configs, &rollouts, &mut report);
    cross::check(&configs, &rollouts, &mut report);
    report.sort();
    match args.output {
        Output::Text => print!("{}", report.text()),
        Output::Json => print!("{}", report.json().map_err(|e| failed(e.to_string()))?),
    }
    let (errors, files) = (report.errors(), report.documents.len());
    if errors > 0 {
        return Err(failed(format!("{errors} error(s) in {files} file(s)")));
    }
    eprintln!("sluice validate: {given} in {files} file(s): no errors");
    Ok(())
}

/// The files named, directories expanded to their YAML and JSON files (sorted, recursively).
fn files(named: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in named {
        if path.is_dir() {
            walk(path, &mut out, report);
        } else {
            out.push(path.clone());
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, report: &mut Report) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let at = report::At {
                file: dir.display().to_string(),
                document: 0,
                object: String::new(),
            };
            report.error(&at, ".", "", format!("cannot read the directory: {e}"));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            walk(&path, out, report);
        } else if ["yaml", "yml", "json"].contains(&ext.to_ascii_lowercase().as_str()) {
            out.push(path);
        }
    }
}

fn failed(problem: String) -> controller::Error {
    controller::Error::Rollout(rollout::Error::Parse {
        path: "validate".into(),
        problem,
    })
}
