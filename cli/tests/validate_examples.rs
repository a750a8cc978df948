#![cfg(test)]
//! Every YAML and JSON example the repository ships validates clean with `sluice validate`, alone and
//! together with what is applied with it; kinds that are not sluice's are noted and skipped. `make
//! test` runs this, so an example that the filter or the controller would refuse cannot ship.
//!
//! Found by walking the repository, so a new example is checked without editing this test. Not
//! examples: test fixtures (`tests/` folders, some invalid on purpose) and templates whose `@NAME@`
//! placeholders a script fills in (not YAML until then).

use std::path::{Path, PathBuf};
use std::process::Command;

const NOT_EXAMPLES: [&str; 8] = [
    "target",
    ".git",
    ".venv",
    ".run",
    "dist",
    "node_modules",
    "tests",
    ".cargo",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn examples(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if !NOT_EXAMPLES.contains(&name.as_str()) {
                examples(&path, out);
            }
        } else if [".yaml", ".yml", ".json"].iter().any(|e| name.ends_with(e)) {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if is_template(&text) {
                println!(
                    "{}: a template (@NAME@ placeholders): skipped",
                    path.display()
                );
            } else {
                out.push(path);
            }
        }
    }
}

/// `@ADMIN_PORT@` and the like.
fn is_template(text: &str) -> bool {
    text.split('@').skip(1).step_by(2).any(|between| {
        !between.is_empty()
            && between
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// `sluice validate FILES` from the repository root: (exit 0, stdout, the summary's numbers of
/// sluice configs and CohortRollouts checked).
fn validate(files: &[PathBuf]) -> (bool, String, usize, usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .args(files.iter().map(|f| f.strip_prefix(repo()).unwrap_or(f)))
        .current_dir(repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    print!("{stdout}{stderr}");
    // "sluice validate: 2 sluice config(s) and 1 CohortRollout(s) in 21 file(s): no errors"
    let numbers: Vec<usize> = stderr
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (configs, rollouts) = match numbers[..] {
        [configs, rollouts, _files] => (configs, rollouts),
        _ => (0, 0),
    };
    (out.status.success(), stdout, configs, rollouts)
}

/// Documents of `kind` in `text` (YAML's `kind: X` at the start of a line).
fn documents_of(text: &str, kind: &str) -> usize {
    text.lines()
        .filter(|l| l.trim_end() == format!("kind: {kind}"))
        .count()
}

#[test]
fn every_example_validates_clean_on_its_own() {
    let mut files = Vec::new();
    examples(&repo(), &mut files);
    assert!(files.len() > 20, "too few examples found: {files:?}");
    let (mut configs, mut rollouts, mut failed) = (0, 0, Vec::new());
    let (mut carriers, mut shipped_rollouts) = (0, 0);
    for file in &files {
        let (clean, stdout, c, r) = validate(std::slice::from_ref(file));
        if !clean {
            failed.push(format!("{}:\n{stdout}", file.display()));
        }
        configs += c;
        rollouts += r;
        let text = std::fs::read_to_string(file).unwrap();
        carriers += documents_of(&text, "WasmPlugin") + documents_of(&text, "TrafficExtension");
        shipped_rollouts += documents_of(&text, "CohortRollout");
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    println!(
        "{} files: {configs} sluice configs, {rollouts} CohortRollouts",
        files.len()
    );
    // Nothing sluice reads was skipped: every CohortRollout shipped was checked, and every
    // WasmPlugin and TrafficExtension (and at least the local mode's sluice-config.json files).
    assert_eq!(rollouts, shipped_rollouts);
    assert!(
        configs >= carriers + 2,
        "{configs} configs, {carriers} carriers"
    );
}

/// The README's commands, exactly, from the repository root. `deploy/ deploy/example/` (kubectl apply
/// -k deploy/ then -k deploy/example/): each kustomization read as its resources, each file once, the
/// example's CohortRollout checked against the WasmPlugin it targets. The TrafficExtension variant
/// alone: its kustomization's resources (`../app` and the TrafficExtension), never the WasmPlugin
/// beside it, and a note that its patch is not rendered.
#[test]
fn the_readme_validate_commands_pass() {
    let run = |args: &[&str]| {
        let files: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
        validate(&files)
    };
    let (clean, stdout, configs, rollouts) = run(&["deploy/", "deploy/example/"]);
    assert!(clean, "{stdout}");
    assert_eq!((configs, rollouts), (1, 1), "{stdout}");
    assert!(!stdout.contains("is also defined"), "{stdout}");
    assert!(!stdout.contains("is not among the files"), "{stdout}");
    assert!(!stdout.contains("TrafficExtension"), "{stdout}");

    let (clean, stdout, configs, rollouts) = run(&["deploy/example/trafficextension/"]);
    assert!(clean, "{stdout}");
    assert_eq!((configs, rollouts), (1, 1), "{stdout}");
    assert!(
        !stdout.contains("WasmPlugin istio-system/sluice ("),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "deploy/example/trafficextension/kustomization.yaml: note: patches not rendered"
        ),
        "{stdout}"
    );
}

/// The TrafficExtension variant as kustomize renders it (its patch moves the CohortRollout's target
/// to `trafficExtension`): the rollout checked against the TrafficExtension.
#[test]
fn the_trafficextension_example_validates_clean_with_its_target() {
    let deploy = repo().join("deploy");
    let rollout = std::fs::read_to_string(deploy.join("example/app/cohortrollout.yaml")).unwrap();
    assert!(rollout.contains("    wasmPlugin:"), "{rollout}");
    let moved = rollout.replace("    wasmPlugin:", "    trafficExtension:");
    let dir = std::env::temp_dir().join(format!("sluice-validate-te-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let moved_path = dir.join("cohortrollout.yaml");
    std::fs::write(&moved_path, moved).unwrap();
    let extension = deploy.join("example/trafficextension/trafficextension.yaml");
    let (clean, stdout, configs, rollouts) = validate(&[extension, moved_path]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(clean, "{stdout}");
    assert_eq!((configs, rollouts), (1, 1));
    assert!(!stdout.contains("is not among the files"), "{stdout}");
}
