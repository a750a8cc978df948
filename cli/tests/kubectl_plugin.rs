#![cfg(test)]
//! The binary installed as `kubectl-sluice` is a kubectl plugin: kubectl's usage, `-n/--namespace`
//! (default: the context's), `--context`, `--kubeconfig` and `KUBECONFIG`, before or after the
//! command. No API server runs here: the kubeconfig points at a closed port, and each failure must
//! name the context, the server and the namespace it was for, so a command sent to the wrong cluster
//! says so. `plan` and `validate` work offline.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory with the binary linked as `kubectl-sluice` and a kubeconfig whose two contexts point
/// at a port nothing listens on: `shop-ctx` (current, namespace shop) and `web-ctx` (namespace web).
struct Plugin {
    dir: PathBuf,
    server: String,
}

impl Plugin {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sluice-kubectl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), dir.join("kubectl-sluice"))
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("https://127.0.0.1:{port}");
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: shop-ctx\n\
             clusters:\n- name: closed\n  cluster: {{server: \"{server}\"}}\n\
             contexts:\n- name: shop-ctx\n  context: {{cluster: closed, user: me, namespace: shop}}\n\
             - name: web-ctx\n  context: {{cluster: closed, user: me, namespace: web}}\n\
             users:\n- name: me\n  user: {{token: not-a-secret}}\n"
        );
        std::fs::write(dir.join("kubeconfig"), kubeconfig).unwrap();
        Plugin { dir, server }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `kubectl-sluice ARGS`, with KUBECONFIG set (`None`: unset, and no ~/.kube/config either).
    fn run(&self, kubeconfig: Option<&Path>, args: &[&str]) -> Output {
        let mut command = Command::new(self.dir.join("kubectl-sluice"));
        command
            .args(args)
            .env("HOME", &self.dir)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("RUST_LOG");
        match kubeconfig {
            Some(path) => command.env("KUBECONFIG", path),
            None => command.env_remove("KUBECONFIG"),
        };
        let out = command.output().unwrap();
        println!(
            "$ kubectl-sluice {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The one error line of a failed command.
    fn error(&self, kubeconfig: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(kubeconfig, args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(
            stderr.lines().count(),
            1,
            "one line, kubectl's way: {stderr}"
        );
        stderr
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn help_speaks_as_kubectl_sluice_with_kubectls_flags() {
    let plugin = Plugin::new("help");
    let out = plugin.run(None, &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(
        help.contains("Usage: kubectl sluice [OPTIONS] <COMMAND>"),
        "{help}"
    );
    for command in [
        "status", "pause", "resume", "promote", "abort", "plan", "timeline",
    ] {
        let listed = help
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{command} ")));
        assert!(listed, "{command} missing: {help}");
    }
    for flag in [
        "-n, --namespace <NAMESPACE>",
        "--context <NAME>",
        "--kubeconfig <PATH>",
    ] {
        assert!(help.contains(flag), "{flag} missing: {help}");
    }
    // The controller is not a plugin command.
    assert!(!help.contains("controller"), "{help}");
}

#[test]
fn a_context_not_in_the_kubeconfig_is_named() {
    let plugin = Plugin::new("nope");
    let kubeconfig = plugin.kubeconfig();
    let error = plugin.error(
        Some(&kubeconfig),
        &["status", "-n", "shop", "--context", "nope"],
    );
    assert!(error.starts_with("error: kubeconfig "), "{error}");
    assert!(error.contains("context \"nope\""), "{error}");
}

#[test]
fn each_failure_names_the_namespace_context_and_server() {
    let plugin = Plugin::new("closed");
    let kubeconfig = plugin.kubeconfig();
    let k = Some(kubeconfig.as_path());
    let server = &plugin.server;
    // The current context, its namespace.
    let error = plugin.error(k, &["status"]);
    assert!(
        error.starts_with(&format!(
            "error: listing the CohortRollouts of namespace shop on context \"shop-ctx\" (server {server}/): "
        )),
        "{error}"
    );
    // -n before or after the command; -A for every namespace.
    let error = plugin.error(k, &["-n", "payments", "status"]);
    assert!(
        error.contains("of namespace payments on context \"shop-ctx\""),
        "{error}"
    );
    let error = plugin.error(k, &["status", "-A"]);
    assert!(
        error.contains("of every namespace on context \"shop-ctx\""),
        "{error}"
    );
    // --context picks the context, and with it its namespace unless -n says otherwise.
    let error = plugin.error(k, &["pause", "checkout", "--context", "web-ctx"]);
    let web = format!("on context \"web-ctx\" (server {server}/)");
    assert!(
        error.starts_with(&format!(
            "error: sending pause to CohortRollout web/checkout {web}"
        )),
        "{error}"
    );
    let error = plugin.error(
        k,
        &["--context", "web-ctx", "-n", "shop", "abort", "checkout"],
    );
    assert!(
        error.contains("abort to CohortRollout shop/checkout on context \"web-ctx\""),
        "{error}"
    );
    // --kubeconfig instead of KUBECONFIG.
    let path = kubeconfig.to_str().unwrap();
    let error = plugin.error(None, &["--kubeconfig", path, "resume", "checkout"]);
    assert!(
        error.contains("resume to CohortRollout shop/checkout on context \"shop-ctx\""),
        "{error}"
    );
    let error = plugin.error(k, &["timeline", "checkout", "--out", "x"]);
    assert!(
        error.contains("reading CohortRollout shop/checkout on context \"shop-ctx\""),
        "{error}"
    );
}

/// `sluice` itself takes `--context` too, with its own defaults (status: every namespace).
#[test]
fn sluice_takes_the_context_too() {
    let plugin = Plugin::new("sluice");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["status", "--context", "web-ctx"])
        .env("KUBECONFIG", plugin.kubeconfig())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    println!("{stderr}");
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "sluice: listing the CohortRollouts of every namespace on context \"web-ctx\""
        ),
        "{stderr}"
    );
}

#[test]
fn plan_and_validate_work_offline() {
    let plugin = Plugin::new("offline");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let rollout = fixtures.join("plan_fixtures/mirror.yaml");
    let cities = fixtures.join("plan_fixtures/cities.json");
    let out = plugin.run(
        None,
        &[
            "plan",
            rollout.to_str().unwrap(),
            "--cities",
            cities.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("STEP  PERCENT REGIONS"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");

    let gateway = fixtures.join("validate_fixtures/gateway.yaml");
    let out = plugin.run(None, &["validate", gateway.to_str().unwrap()]);
    assert!(out.status.success());
    let narrows = fixtures.join("validate_fixtures/rollout-narrows.yaml");
    let out = plugin.run(None, &["validate", narrows.to_str().unwrap()]);
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("spec.steps[1].percent = 5.0"), "{stdout}");
}

/// Documents naming no namespace are in the context's namespace (as `kubectl apply` puts them), `-n`'s
/// when given, `default` without a kubeconfig: the fixture's CohortRollout finds its WasmPlugin only
/// in shop.
#[test]
fn validate_puts_documents_in_the_contexts_namespace() {
    let plugin = Plugin::new("validate-ns");
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/validate_fixtures/no-namespace.yaml");
    let file = file.to_str().unwrap();
    let kubeconfig = plugin.kubeconfig();
    let run = |kubeconfig: Option<&Path>, args: &[&str]| {
        let out = plugin.run(kubeconfig, args);
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let in_shop = run(Some(&kubeconfig), &["validate", file]);
    assert!(!in_shop.contains("not among the files"), "{in_shop}");
    let in_web = run(
        Some(&kubeconfig),
        &["--context", "web-ctx", "validate", file],
    );
    assert!(in_web.contains("not among the files"), "{in_web}");
    let flag = kubeconfig.to_str().unwrap();
    let in_shop = run(
        None,
        &[
            "--kubeconfig",
            flag,
            "--context",
            "web-ctx",
            "validate",
            "-n",
            "shop",
            file,
        ],
    );
    assert!(!in_shop.contains("not among the files"), "{in_shop}");
    // No kubeconfig at all: `default`, and still offline.
    let in_default = run(None, &["validate", file]);
    assert!(in_default.contains("not among the files"), "{in_default}");
}
