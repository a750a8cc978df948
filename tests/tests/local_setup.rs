#![cfg(test)]
//! The docker-compose file users run cannot be run here: it must stay the tested topology.

mod common;

use std::fs;

#[test]
fn docker_compose_runs_the_tested_envoy_version_config_and_upstreams() {
    let root = common::repo_root();
    let version = fs::read_to_string(root.join("envoy-configs/ENVOY_VERSION")).unwrap();
    let compose = fs::read_to_string(root.join("envoy-configs/docker-compose.yaml")).unwrap();
    let run = fs::read_to_string(root.join("scripts/run-local.sh")).unwrap();
    assert!(
        compose.contains(&format!("image: envoyproxy/envoy:v{}", version.trim())),
        "compose pins another Envoy"
    );
    for needle in [
        "envoy-configs/envoy.yaml",
        "scripts/upstream.py, stable, \"10001\"",
        "scripts/upstream.py, canary, \"10002\"",
        ".run/ecds/sluice.json",
    ] {
        assert!(compose.contains(needle), "compose lacks {needle}");
    }
    for needle in [
        "envoy-configs/envoy.yaml",
        "upstream.py stable 10001",
        "upstream.py canary 10002",
        ".run/ecds/sluice.json",
    ] {
        assert!(run.contains(needle), "make run lacks {needle}");
    }
    // The example config that both start with is valid.
    let example = fs::read(root.join("envoy-configs/sluice-config.json")).unwrap();
    cohort::CompiledConfig::from_json(&example).unwrap();
}

/// Words a person might use as a token; a shipped digest of one would be a known secret.
const GUESSABLE: &[&str] = &[
    "test", "testing", "tester", "token", "secret", "password", "passw0rd", "admin", "changeme",
    "canary", "stable", "override", "sluice", "example", "demo", "dev", "debug", "qa", "letmein",
    "123456", "12345678", "qwerty", "hunter2", "foo", "bar", "s3cr3t",
];

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every 64-hex-digit run in a text.
fn digests_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            run.push(c.to_ascii_lowercase());
        } else {
            if run.len() == 64 {
                out.push(run.clone());
            }
            run.clear();
        }
    }
    out
}

fn shipped_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            shipped_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn no_shipped_example_or_doc_carries_the_digest_of_a_guessable_token() {
    let root = common::repo_root();
    let mut files = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for dir in ["deploy", "envoy-configs", "scripts"] {
        shipped_files(&root.join(dir), &mut files);
    }
    let known: Vec<(String, &str)> = GUESSABLE.iter().map(|w| (sha256_hex(w), *w)).collect();
    let mut found = Vec::new();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        for digest in digests_in(&text) {
            if let Some((_, word)) = known.iter().find(|(d, _)| *d == digest) {
                found.push(format!("{}: the SHA-256 of {word:?}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "guessable token digests ship:\n{}",
        found.join("\n")
    );
}

/// `make run` (and the compose file) hand testers a token generated on first use, printed, kept in
/// `.run/override-token`, and never a fixed one.
#[test]
fn the_local_example_generates_and_prints_its_own_override_token() {
    let root = common::repo_root();
    let generate = |dir: &std::path::Path| {
        let out = std::process::Command::new("python3")
            .arg(root.join("scripts/ecds.py"))
            .arg(root.join("envoy-configs/sluice-config.json"))
            .arg(dir.join("ecds.json"))
            .arg(root.join("dist/sluice_filter.wasm"))
            .arg("--override-token-file")
            .arg(dir.join("override-token"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).unwrap();
        let token = fs::read_to_string(dir.join("override-token")).unwrap();
        let ecds: serde_json::Value =
            serde_json::from_slice(&fs::read(dir.join("ecds.json")).unwrap()).unwrap();
        let config = ecds["resources"][0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        (printed, token, config)
    };
    let dirs: Vec<_> = (0..2)
        .map(|i| {
            let d = std::env::temp_dir().join(format!("sluice-token-{}-{i}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    let (printed, token, config) = generate(&dirs[0]);
    assert!(token.len() >= 24, "a short token: {token:?}");
    assert!(
        printed.contains(&token),
        "the token is not printed: {printed}"
    );
    let compiled = cohort::CompiledConfig::from_json(config.as_bytes()).unwrap();
    assert!(compiled.override_authorized(token.as_bytes()));
    assert!(!compiled.override_authorized(b"test"));
    // The same machine keeps its token across restarts; another machine gets another one.
    assert_eq!(generate(&dirs[0]).1, token);
    assert_ne!(generate(&dirs[1]).1, token);
    for d in dirs {
        let _ = fs::remove_dir_all(d);
    }
}
