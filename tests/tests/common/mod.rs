//! A real Envoy with the built .wasm, two real upstreams, on free loopback ports, for one test.
//! Everything it starts is killed when the `Stack` drops.
#![allow(dead_code)]

pub mod http;
pub mod load;
pub mod local;
pub mod mirror;
pub mod prometheus;
pub mod traffic;

use serde_json::{json, Value};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Five real cities in two regions: small cities first needs their populations.
pub fn demo_cities() -> Value {
    json!({
        "faro": {"population": 64560, "region": "eu-south"},
        "porto": {"population": 231800, "region": "eu-south"},
        "lisbon": {"population": 545000, "region": "eu-south"},
        "cork": {"population": 222526, "region": "eu-west"},
        "dublin": {"population": 1173179, "region": "eu-west"}
    })
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn required(path: PathBuf, hint: &str) -> PathBuf {
    assert!(path.exists(), "{} is missing: {hint}", path.display());
    path
}

/// The `sluice` binary that `make integration` builds (debug profile).
pub fn sluice_bin() -> PathBuf {
    required(
        repo_root().join("target/debug/sluice"),
        "run `cargo build -p sluice`",
    )
}

/// Runs `sluice ARGS...` from the repository root; returns stdout, failing on a non-zero exit.
pub fn run_sluice(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(sluice_bin())
        .args(args)
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Stack {
    pub dir: PathBuf,
    pub listener: u16,
    pub admin: u16,
    pub stable: u16,
    pub canary: u16,
    ecds_path: PathBuf,
    wasm_path: PathBuf,
    // Dropped (killed) in declaration order: Envoy first.
    envoy: Process,
    upstreams: Vec<Process>,
}

impl Stack {
    /// Starts the upstreams and an Envoy whose sluice filter gets `config` (a sluice JSON document).
    pub fn start(config: &Value) -> Stack {
        Stack::start_with("envoy.yaml", config)
    }

    /// Like [`Stack::start`], with another Envoy config of `envoy-configs/` (same ports and ECDS path).
    pub fn start_with(template: &str, config: &Value) -> Stack {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let root = repo_root();
        let envoy_bin = required(root.join(".venv/bin/envoy"), "run `make deps`");
        let wasm_path = required(root.join("dist/sluice_filter.wasm"), "run `make wasm`");
        let dir = std::env::temp_dir().join(format!(
            "sluice-test-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (listener, admin, stable, canary) =
            (free_port(), free_port(), free_port(), free_port());

        let upstreams = [("stable", stable), ("canary", canary)]
            .map(|(name, port)| {
                let child = Command::new("python3")
                    .arg(root.join("scripts/upstream.py"))
                    .args([name, &port.to_string()])
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("python3 runs the test upstream");
                Process(child)
            })
            .into_iter()
            .collect::<Vec<_>>();

        let ecds_path = dir.join("ecds/sluice.json");
        write_ecds(&ecds_path, &wasm_path, &config.to_string());
        let template = fs::read_to_string(root.join("envoy-configs").join(template)).unwrap();
        let rendered = template
            .replace("port_value: 9901", &format!("port_value: {admin}"))
            .replace("port_value: 10000", &format!("port_value: {listener}"))
            .replace("port_value: 10001", &format!("port_value: {stable}"))
            .replace("port_value: 10002", &format!("port_value: {canary}"))
            .replace(".run/ecds/sluice.json", ecds_path.to_str().unwrap());
        assert_ne!(rendered, template);
        let envoy_yaml = dir.join("envoy.yaml");
        fs::write(&envoy_yaml, rendered).unwrap();
        let log = fs::File::create(dir.join("envoy.log")).unwrap();
        let envoy = Process(
            Command::new(envoy_bin)
                .arg("-c")
                .arg(&envoy_yaml)
                .args(["--concurrency", "2", "--use-dynamic-base-id", "-l", "info"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("envoy starts"),
        );
        let stack = Stack {
            dir,
            listener,
            admin,
            stable,
            canary,
            ecds_path,
            wasm_path,
            envoy,
            upstreams,
        };
        wait_for_port(stable, "stable upstream");
        wait_for_port(canary, "canary upstream");
        stack.wait_ready();
        stack
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http::get(self.admin, "/ready", &[]) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Envoy not ready; log:\n{}",
                self.envoy_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the filter's config the way a control plane without xDS does: a new ECDS file moved over the old.
    pub fn update_config(&self, config_json: &str) {
        write_ecds(&self.ecds_path, &self.wasm_path, config_json);
    }

    pub fn ecds_path(&self) -> &Path {
        &self.ecds_path
    }

    pub fn envoy_log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// A request through Envoy; the upstream echoes what it received.
    pub fn send(&self, headers: &[(&str, &[u8])]) -> http::Response {
        self.send_path("/", headers)
    }

    pub fn send_path(&self, path: &str, headers: &[(&str, &[u8])]) -> http::Response {
        http::get(self.listener, path, headers)
            .unwrap_or_else(|e| panic!("request through Envoy failed: {e}"))
    }

    pub fn prometheus(&self) -> String {
        let r = http::get(self.admin, "/stats/prometheus", &[]).unwrap();
        String::from_utf8_lossy(&r.body).into_owned()
    }

    /// The value of one sample line in /stats/prometheus, e.g. `sluice_requests_total{...}`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.prometheus(), series)
    }

    /// Polls until `check` holds or the timeout passes; returns how long it took.
    pub fn eventually(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            if check() {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Changes how an upstream behaves (`{"error_rate": 1.0}` or `{"delay_ms": 50}`).
    pub fn control_upstream(&self, port: u16, behaviour: &Value) {
        let r = http::post(port, "/__control", &behaviour.to_string()).unwrap();
        assert_eq!(r.status, 200);
    }
}

pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// The ECDS file: a DiscoveryResponse with the Wasm filter config, written atomically (temp + rename).
pub fn write_ecds(path: &Path, wasm: &Path, config_json: &str) {
    let doc = json!({"resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": "sluice",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "sluice",
                "root_id": "sluice",
                "vm_config": {
                    "vm_id": "sluice",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm.to_str().unwrap()}}
                },
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config_json},
                "fail_open": false
            }
        }
    }]});
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, doc.to_string()).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The version that answered and the request headers it received, from the upstream's echo.
pub fn echo(response: &http::Response) -> (String, Value) {
    assert_eq!(
        response.status,
        200,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    let body: Value = serde_json::from_slice(&response.body).unwrap();
    (
        body["version"].as_str().unwrap().to_string(),
        body["headers"].clone(),
    )
}
