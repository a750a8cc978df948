#![cfg(test)]
//! `sluice validate` as a CI job runs it, the real binary over good and bad files: each refused
//! document gives the filter's or the controller's own error (path, value, reason) and a non-zero
//! exit; what is not sluice's is noted and skipped; `--output json` carries the same findings.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/validate_fixtures")
}

/// `sluice validate ARGS` in the fixtures directory, so that the lines name the files as given.
fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("validate")
        .args(args)
        .current_dir(fixtures())
        .output()
        .unwrap()
}

struct Case {
    args: &'static [&'static str],
    /// Exit 0.
    clean: bool,
    /// Each must be a whole line of stdout (errors, then notes, by file and document).
    lines: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        args: &["gateway.yaml"],
        clean: true,
        lines: &[],
    },
    Case {
        args: &["other-kinds.yaml"],
        clean: true,
        lines: &[
            "other-kinds.yaml#1: note: ConfigMap shop/settings (v1): not a sluice kind, skipped",
            "other-kinds.yaml#2: note: spec.pluginConfig has none of a sluice config's fields and no \
             CohortRollout given targets WasmPlugin istio-system/openid: another filter's, skipped",
        ],
    },
    Case {
        args: &["config-percent.json"],
        clean: false,
        lines: &["config-percent.json: rollouts[0].stage.percent = 150.0: must be between 0 and 100"],
    },
    Case {
        args: &["config-truncated.json"],
        clean: false,
        lines: &["config-truncated.json: rollouts: EOF while parsing a list at line 4 column 0"],
    },
    Case {
        args: &["wasmplugin-header.yaml"],
        clean: false,
        lines: &["wasmplugin-header.yaml: spec.pluginConfig.geo.region_header = \"x geo region\": \
                  must be an HTTP header name (letters, digits, - and _)"],
    },
    // The parser's line would be the JSON's Istio hands over, not the file's: left out.
    Case {
        args: &["trafficextension-field.yaml"],
        clean: false,
        lines: &["trafficextension-field.yaml: spec.wasm.pluginConfig.citys: unknown field `citys`, \
                  expected one of `generation`, `geo`, `cities`, `identity`, `overrides`, `rollouts`"],
    },
    Case {
        args: &["rollout-narrows.yaml"],
        clean: false,
        lines: &["rollout-narrows.yaml: spec.steps[1].percent = 5.0: lower than step 0's 10: users \
                  would move back to stable"],
    },
    Case {
        args: &["rollout-type.yaml"],
        clean: false,
        lines: &["rollout-type.yaml: spec.steps[0].percent: invalid type: string \"ten\", expected f64 \
                  at line 7 column 15"],
    },
    Case {
        args: &["rollout-typo.yaml"],
        clean: false,
        lines: &["rollout-typo.yaml: spec.steps[1].pauseBefor: unknown field: kubectl apply refuses it \
                  (strict decoding error), and a rollout file would lose it"],
    },
    Case {
        args: &["rollout-no-checks.yaml"],
        clean: false,
        lines: &["rollout-no-checks.yaml: spec.analysis.metrics = \"[]\": at least one check is needed: \
                  without one no step can pass"],
    },
    Case {
        args: &["rollout-api-version.yaml"],
        clean: false,
        lines: &["rollout-api-version.yaml: apiVersion = \"sluice.dev/v1\": the CohortRollout CRD serves \
                  sluice.dev/v1alpha1"],
    },
    Case {
        args: &["rollout-two-targets.yaml"],
        clean: false,
        lines: &["rollout-two-targets.yaml: spec.target.trafficExtension = \"set\": spec.target.wasmPlugin \
                  (sluice) is set too: name one resource carrying the sluice config, the WasmPlugin or \
                  (Istio 1.30+) the TrafficExtension"],
    },
    Case {
        args: &["broken.yaml"],
        clean: false,
        lines: &["broken.yaml: .: did not find expected ',' or '}' at line 4 column 5, while parsing a \
                  flow mapping at line 3 column 11"],
    },
    Case {
        args: &["one-entry-two-owners.yaml"],
        clean: false,
        lines: &["one-entry-two-owners.yaml#2: spec.target.rollout = \"web\": the rollouts[] entry \"web\" \
                  belongs to CohortRollout shop/web-v2, and a CohortRollout edits only its own entry: set \
                  spec.target.rollout to an entry name of this rollout's own"],
    },
    Case {
        args: &["same-requests.yaml"],
        clean: false,
        lines: &["same-requests.yaml#2: spec.target.match = \"authority shop.example.com, path prefix \
                  /checkout\": the rollouts[] entry \"checkout\" (owner shop/checkout) matches exactly the \
                  same requests and comes first, so this rollout would never see a request: give it a \
                  narrower match, or remove that entry from the sluice config"],
    },
    Case {
        args: &["entry-taken.yaml"],
        clean: false,
        lines: &["entry-taken.yaml#2: spec.target.rollout = \"web\": the rollouts[] entry \"web\" belongs \
                  to CohortRollout other/web, and a CohortRollout edits only its own entry: set \
                  spec.target.rollout to an entry name of this rollout's own"],
    },
    Case {
        args: &["namespace-not-allowed.yaml"],
        clean: false,
        lines: &["namespace-not-allowed.yaml#2: spec.target.wasmPlugin.namespace = \"istio-system\": the \
                  WasmPlugin's namespace does not allow CohortRollouts of namespace shop: its owner may \
                  list it in the WasmPlugin annotation sluice.dev/allowed-namespaces (which is not set)"],
    },
    Case {
        args: &["plugin-without-config.yaml"],
        clean: false,
        lines: &["plugin-without-config.yaml#1: spec.pluginConfig: absent: put the sluice config with the \
                  shared settings here (generation, cities, identity, overrides; the controller adds the \
                  rollouts)"],
    },
    // Across files: the same CohortRollout twice, and an entry deciding the same requests as one of
    // another file.
    Case {
        args: &["gateway.yaml", "cross-file.yaml"],
        clean: false,
        lines: &[
            "cross-file.yaml#1: metadata.name = \"checkout\": CohortRollout shop/checkout is also \
             defined in gateway.yaml#2: applying both keeps only the last",
            "cross-file.yaml#2: spec.target.match = \"authority shop.example.com, path prefix /search\": \
             the rollouts[] entry \"search\" (owner shop/search) matches exactly the same requests and \
             comes first, so this rollout would never see a request: give it a narrower match, or \
             remove that entry from the sluice config",
        ],
    },
    // -n places the documents naming no namespace, as `kubectl apply -n` does.
    Case {
        args: &["-n", "shop", "no-namespace.yaml"],
        clean: true,
        lines: &[],
    },
    Case {
        args: &["no-namespace.yaml"],
        clean: true,
        lines: &["no-namespace.yaml#2: note: WasmPlugin shop/sluice is not among the files: the entries \
                  of the CohortRollouts given that target it were checked against an empty sluice config \
                  with the default shared settings; its own entries and namespace allowance are checked \
                  by the controller"],
    },
];

#[test]
fn each_file_gives_exactly_the_errors_the_filter_and_controller_would() {
    let mut failures = Vec::new();
    for case in CASES {
        let out = validate(case.args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "$ sluice validate {}\n{stdout}{stderr}",
            case.args.join(" ")
        );
        if out.status.success() != case.clean {
            failures.push(format!("{:?}: exit {:?}", case.args, out.status.code()));
        }
        let lines: Vec<&str> = stdout.lines().collect();
        if case.lines.is_empty() && !lines.is_empty() {
            failures.push(format!("{:?}: expected no findings: {stdout}", case.args));
        }
        for want in case.lines {
            if !lines.contains(want) {
                failures.push(format!("{:?}: no line\n  {want}\nin\n{stdout}", case.args));
            }
        }
        let errors = lines.iter().filter(|l| !l.contains(": note: ")).count();
        let wanted = case
            .lines
            .iter()
            .filter(|l| !l.contains(": note: "))
            .count();
        if errors != wanted {
            failures.push(format!(
                "{:?}: {errors} errors, expected {wanted}",
                case.args
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_output_carries_file_document_path_value_message_and_severity() {
    let out = validate(&[
        "--output",
        "json",
        "other-kinds.yaml",
        "rollout-narrows.yaml",
        "gateway.yaml",
    ]);
    assert!(!out.status.success());
    let findings: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    println!("{findings:#?}");
    assert_eq!(findings.len(), 3, "two notes and an error");
    assert_eq!(findings[0]["severity"], "note");
    assert_eq!(findings[0]["document"], 1);
    assert_eq!(findings[0]["object"], "ConfigMap shop/settings");
    let error = &findings[2];
    assert_eq!(error["file"], "rollout-narrows.yaml");
    assert_eq!(error["document"], 1);
    assert_eq!(error["object"], "CohortRollout shop/web");
    assert_eq!(error["path"], "spec.steps[1].percent");
    assert_eq!(error["value"], "5.0");
    assert_eq!(
        error["message"],
        "lower than step 0's 10: users would move back to stable"
    );
    assert_eq!(error["severity"], "error");
}

#[test]
fn a_directory_is_every_yaml_and_json_file_in_it_and_stdin_is_dash() {
    let out = validate(&["."]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for file in ["broken.yaml", "config-percent.json", "rollout-typo.yaml"] {
        assert!(stdout.contains(&format!("./{file}")), "{file}: {stdout}");
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(fixtures().join("rollout-narrows.yaml")).unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &text).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        stdout.starts_with("-: spec.steps[1].percent = 5.0: lower than step 0's 10"),
        "{stdout}"
    );
}
