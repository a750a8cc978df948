#![cfg(test)]
//! The Dockerfile and demo/compose.yaml cannot be built or run here (no Docker engine): these checks
//! keep them the tested binary and topology, so a rename, a new workspace member or a new port breaks a
//! test instead of a user's `docker compose up`.

#[path = "../common/mod.rs"]
mod common;
mod parse;

use parse::{args_of, command_of, service, stages, version};
use std::fs;
use std::process::Command;

fn read(path: &str) -> String {
    fs::read_to_string(common::repo_root().join(path)).unwrap()
}

#[test]
fn the_docker_image_builds_the_sluice_binary_locked_from_every_workspace_member() {
    let dockerfile = read("Dockerfile");
    let stages = stages(&dockerfile);
    assert!(stages.len() >= 2, "not multi-stage");
    let builder = &stages[0];
    let runs = args_of(builder, "RUN").join("\n");
    assert!(
        runs.contains("cargo build --release --locked -p sluice --bin sluice"),
        "the builder does not build the locked release sluice binary:\n{runs}"
    );
    // Cargo loads every member's manifest: a member the image lacks fails `docker build`.
    let copies = args_of(builder, "COPY");
    let copied: Vec<&str> = copies
        .iter()
        .flat_map(|a| {
            let words: Vec<&str> = a.split(' ').filter(|w| !w.starts_with("--")).collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let workspace = read("Cargo.toml");
    let members = workspace
        .split("members = [")
        .nth(1)
        .unwrap()
        .split(']')
        .next()
        .unwrap();
    let members: Vec<&str> = members
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(
        members.contains(&"cli"),
        "members parsed wrong: {members:?}"
    );
    for needed in ["Cargo.toml", "Cargo.lock"].iter().copied().chain(members) {
        assert!(
            copied
                .iter()
                .any(|c| needed == *c || needed.starts_with(&format!("{c}/"))),
            "the image does not copy {needed} (copies {copied:?})"
        );
    }
    // The pinned toolchain builds every member: no member asks for a newer Rust.
    let from = args_of(builder, "FROM")[0];
    let image = from.split(' ').next().unwrap();
    let tag = image
        .strip_prefix("rust:")
        .expect("the builder is not a rust image");
    let toolchain = version(tag);
    let root = common::repo_root();
    for manifest in [
        "Cargo.toml",
        "cli/Cargo.toml",
        "controller/Cargo.toml",
        "rollout/Cargo.toml",
    ] {
        let text = fs::read_to_string(root.join(manifest)).unwrap();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("rust-version = ") {
                let wanted = version(v.trim_matches('"'));
                assert!(
                    toolchain >= wanted,
                    "{manifest} needs Rust {v}, the image has {tag}"
                );
            }
        }
    }
    // The context leaves out build output and local state, and keeps what the image copies.
    let ignore = read(".dockerignore");
    let ignored: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for big in ["target", ".venv", ".run", ".git"] {
        assert!(ignored.contains(&big), ".dockerignore keeps {big}");
    }
    for c in &copied {
        assert!(
            !ignored
                .iter()
                .any(|i| c == i || c.starts_with(&format!("{i}/"))),
            ".dockerignore drops {c}, which the image copies"
        );
    }
}

#[test]
fn the_docker_image_runs_only_the_sluice_binary_as_a_numeric_non_root_user() {
    let stages = stages(&read("Dockerfile"));
    let runtime = stages.last().unwrap();
    let copies = args_of(runtime, "COPY");
    assert!(
        copies
            .iter()
            .any(|c| c.starts_with("--from=builder ") && c.ends_with(" /usr/local/bin/sluice")),
        "the runtime image does not take the binary from the builder: {copies:?}"
    );
    let user = *args_of(runtime, "USER")
        .last()
        .expect("no USER: runs as root");
    let ids: Vec<&str> = user.split(':').collect();
    assert!(
        ids.iter()
            .all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_digit())),
        "USER {user} is not numeric (Kubernetes' runAsNonRoot cannot verify a name)"
    );
    assert_ne!(ids[0].parse::<u32>().unwrap(), 0, "USER is root");
    assert_eq!(
        args_of(runtime, "ENTRYPOINT"),
        [r#"["/usr/local/bin/sluice"]"#],
        "the entrypoint is not the binary (exec form, no shell)"
    );
    // The runtime image (distroless/cc) has glibc and libgcc_s and no more: a new native dependency
    // (OpenSSL, say) must change the image too.
    let ldd = Command::new("ldd")
        .arg(common::sluice_bin())
        .output()
        .unwrap();
    let libs = String::from_utf8(ldd.stdout).unwrap();
    assert!(libs.contains("libc.so"), "ldd: {libs}");
    let provided = [
        "linux-vdso",
        "libgcc_s.so",
        "libm.so",
        "libc.so",
        "ld-linux",
        "libdl.so",
        "libpthread.so",
        "librt.so",
    ];
    for lib in libs.lines().filter_map(|l| l.split_whitespace().next()) {
        assert!(
            provided.iter().any(|p| lib.contains(p)),
            "sluice links {lib}, which the runtime image lacks:\n{libs}"
        );
    }
}

#[test]
fn demo_compose_runs_the_demo_stack_on_the_tested_ports_files_and_commands() {
    let compose = read("demo/compose.yaml");
    let envoy_version = read("envoy-configs/ENVOY_VERSION");
    let envoy_yaml = read("envoy-configs/envoy.yaml");
    let prometheus_yml = read("envoy-configs/prometheus.yml");
    let demo = read("scripts/demo.py");
    let demo_stack = read("scripts/demo_stack.py");
    let rollout = read("demo/rollout-v2.yaml");

    // The ports of `make run`, which envoy.yaml listens on and routes to (the demo rewrites these).
    for port in ["9901", "10000", "10001", "10002"] {
        let value = format!("port_value: {port}}}");
        assert!(envoy_yaml.contains(&value), "envoy.yaml lacks {value}");
        assert!(demo_stack.contains(&format!("\"port_value: {port}\"")));
    }
    let ecds = command_of(service(&compose, "ecds"));
    assert!(
        ecds.contains(
            "scripts/ecds.py demo/sluice-config.json .run/ecds/sluice.json dist/sluice_filter.wasm"
        ),
        "ecds: {ecds}"
    );
    assert!(
        demo.contains("\"demo/sluice-config.json\""),
        "make demo starts from another config"
    );
    assert!(envoy_yaml.contains("path_config_source: {path: .run/ecds/sluice.json}"));
    // The demo's version names: what users, the status and the timeline show.
    assert!(demo.contains("stack.start(\"v1\", \"v2\")"));
    assert_eq!(
        command_of(service(&compose, "stable")),
        r#"[python3, scripts/upstream.py, v1, "10001"]"#
    );
    assert_eq!(
        command_of(service(&compose, "canary")),
        r#"[python3, scripts/upstream.py, v2, "10002"]"#
    );
    let envoy = service(&compose, "envoy");
    assert!(
        envoy.contains(&format!(
            "image: envoyproxy/envoy:v{}\n",
            envoy_version.trim()
        )),
        "compose pins another Envoy than envoy-configs/ENVOY_VERSION:\n{envoy}"
    );
    assert_eq!(
        command_of(envoy),
        r#"[envoy, -c, envoy-configs/envoy.yaml, --concurrency, "2"]"#
    );

    let prometheus = service(&compose, "prometheus");
    assert!(prometheus.contains(
        "source: ../envoy-configs/prometheus.yml, target: /etc/prometheus/prometheus.yml"
    ));
    assert!(command_of(prometheus).contains("--config.file=/etc/prometheus/prometheus.yml"));
    assert!(command_of(prometheus).contains("--web.listen-address=127.0.0.1:9090"));
    for needle in [
        "scrape_interval: 1s",
        "metrics_path: /stats/prometheus",
        "targets: ['127.0.0.1:9901']",
    ] {
        assert!(
            prometheus_yml.contains(needle),
            "prometheus.yml lacks {needle}"
        );
    }

    let controller = service(&compose, "controller");
    assert!(controller.contains("build: {context: .., dockerfile: Dockerfile}"));
    assert_eq!(
        command_of(controller),
        r#"[controller, --local, demo/rollout-v2.yaml, --prometheus, "http://127.0.0.1:9090", --ecds-file, .run/ecds/sluice.json, --state-file, .run/state.json]"#
    );
    for flag in [
        "\"--local\"",
        "\"--prometheus\"",
        "\"--ecds-file\"",
        "\"--state-file\"",
    ] {
        assert!(
            demo_stack.contains(flag),
            "make demo's controller lacks {flag}"
        );
    }
    assert_eq!(
        command_of(service(&compose, "users")),
        r#"[python3, scripts/demo-users.py, --port, "10000"]"#
    );
    // The alert receiver listens where the rollout sends its webhooks.
    assert!(rollout.contains("webhooks: [http://127.0.0.1:9095/alerts]"));
    assert!(service(&compose, "alerts").contains("(\"127.0.0.1\", 9095)"));

    // Loopback addresses as tested: every long-running service shares the host's network.
    for name in [
        "stable",
        "canary",
        "envoy",
        "prometheus",
        "alerts",
        "controller",
        "users",
    ] {
        assert!(
            service(&compose, name).contains("network_mode: host"),
            "{name} is not on the host network"
        );
    }
}

/// Both compose files: the repo is read-only everywhere; only .run/ is written, by the services that
/// must, running as the user who starts them (else root owns .run/ and its 0600 override token).
#[test]
fn compose_files_mount_the_repo_read_only_and_write_only_run_as_the_user() {
    let repo_ro = "{type: bind, source: .., target: /sluice, read_only: true}";
    let run_rw =
        "{type: bind, source: ../.run, target: /sluice/.run, bind: {create_host_path: false}}";
    let as_user = "user: \"${SLUICE_UID:-1000}:${SLUICE_GID:-1000}\"";
    let files = [
        (
            "demo/compose.yaml",
            &["ecds", "stable", "canary", "envoy", "controller", "users"][..],
        ),
        (
            "envoy-configs/docker-compose.yaml",
            &["ecds", "stable", "canary", "envoy"][..],
        ),
    ];
    for (file, services) in files {
        let compose = read(file);
        for &name in services {
            let block = service(&compose, name);
            let writes = ["ecds", "controller"].contains(&name);
            assert!(
                block.contains(repo_ro),
                "{file} {name}: the repo is not read-only"
            );
            assert_eq!(block.contains(run_rw), writes, "{file} {name}: .run/ mount");
            assert_eq!(block.contains(as_user), writes, "{file} {name}: user");
            let mounts = block.matches("source:").count();
            assert_eq!(mounts, 1 + usize::from(writes), "{file} {name}: mounts");
        }
    }
}

#[test]
fn demo_compose_commands_are_ones_the_tools_accept() {
    let root = common::repo_root();
    let compose = read("demo/compose.yaml");
    let help = |program: &std::path::Path, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .current_dir(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{program:?} {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let controller_help = help(&common::sluice_bin(), &["controller", "--help"]);
    let users_help = help(
        std::path::Path::new("python3"),
        &["scripts/demo-users.py", "--help"],
    );
    for (service_name, text) in [("controller", &controller_help), ("users", &users_help)] {
        let command = command_of(service(&compose, service_name));
        for flag in command
            .trim_matches(['[', ']'])
            .split(", ")
            .filter(|w| w.starts_with("--"))
        {
            assert!(
                text.contains(&format!("{flag} ")),
                "{service_name}: {flag} is not an option any more:\n{text}"
            );
        }
    }
    // The status command the compose file tells users to run.
    let status_help = help(&common::sluice_bin(), &["status", "--help"]);
    assert!(compose
        .contains("controller status --state-file .run/state.json --rollout demo/rollout-v2.yaml"));
    for flag in ["--state-file ", "--rollout "] {
        assert!(status_help.contains(flag), "sluice status lacks {flag}");
    }
}

#[test]
fn demo_compose_pins_the_prometheus_the_tests_run() {
    let compose = read("demo/compose.yaml");
    let image = service(&compose, "prometheus")
        .lines()
        .find_map(|l| l.trim().strip_prefix("image: prom/prometheus:v"))
        .expect("prometheus is not a pinned prom/prometheus image")
        .to_string();
    let out = Command::new("prometheus")
        .arg("--version")
        .output()
        .unwrap();
    let tested =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        tested.contains(&format!("version {image}")),
        "compose pins Prometheus {image}, the tests run {tested}"
    );
}
