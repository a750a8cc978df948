//! `sluice validate FILE...`: what the filter and the controller would refuse, found before anything is
//! applied, offline. Each sluice config is parsed and compiled exactly as the filter does (bare, or in
//! a WasmPlugin's `spec.pluginConfig` or a TrafficExtension's `spec.wasm.pluginConfig`); each
//! CohortRollout is read against the CRD and checked as a round checks its spec (target, steps, the
//! monotone plan, the policy). The documents given together are then checked as the controller would
//! meet them (`cross`): entries owned twice, entries deciding the same requests, each step's entry
//! merged into its target's config.

mod configs;
mod cross;
mod files;
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
    /// Files, or directories: one with a kustomization as `kubectl apply -k` reads it (its
    /// `resources:`, patches not rendered), else its *.yaml, *.yml and *.json, recursively; each
    /// file once. `-` reads standard input (`kustomize build DIR | sluice validate -`). Give together
    /// what is applied together: the cross-document checks see only these.
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
    for file in files::files(&args.files, &mut report) {
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

/// The one sluice config of `path`, read as `validate` reads it: a sluice config (JSON, or YAML), or
/// the WasmPlugin or TrafficExtension carrying one. For `--cities`: in Kubernetes the city table
/// lives in that resource.
pub fn sluice_config(path: &Path) -> controller::Result<cohort::SluiceConfig> {
    let mut report = Report::default();
    let configs: Vec<load::ConfigDoc> = load::load(path, "default", &mut report)
        .into_iter()
        .filter_map(|item| match item {
            Item::Config(c) if c.sluice_like => Some(c),
            _ => None,
        })
        .collect();
    let file = path.display().to_string();
    let errors: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == report::Severity::Error)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    if !errors.is_empty() {
        return Err(parse_error(file, errors.join("; ")));
    }
    let [config] = configs.as_slice() else {
        let problem = format!(
            "{} sluice configs: give a sluice config JSON, or one WasmPlugin or TrafficExtension \
             carrying one",
            configs.len()
        );
        return Err(parse_error(file, problem));
    };
    let prefix = config
        .carrier
        .as_ref()
        .map_or("", load::Carrier::config_path);
    let bytes = config.bytes.as_deref().unwrap_or_default();
    cohort::parse(bytes).map_err(|mut e| {
        e.path = report::join(prefix, &e.path);
        parse_error(format!("{file}: {}", config.at.object), e.to_string())
    })
}

fn parse_error(path: String, problem: String) -> controller::Error {
    controller::Error::Rollout(rollout::Error::Parse { path, problem })
}

fn failed(problem: String) -> controller::Error {
    parse_error("validate".into(), problem)
}
