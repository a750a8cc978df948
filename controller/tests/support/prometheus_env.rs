//! A real Prometheus scraping a tiny in-process exporter that mimics the filter's per-cohort series
//! (as Envoy's `/stats/prometheus` shows them), so SLI queries run against real PromQL evaluation.
//! The test sets how fast each cohort's counters grow and may change it while Prometheus scrapes,
//! and may show the proxies' guardrail gauge, tripped or not.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const ROLLOUT: &str = "shop";
/// Envoy's default histogram bucket bounds (ms), which the filter's latency histogram uses.
const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// How one cohort's traffic looks: every request takes `latency_ms`, `error_share` of them are 5xx.
#[derive(Clone, Copy, Debug)]
pub struct Traffic {
    pub rps: f64,
    pub error_share: f64,
    pub latency_ms: f64,
}

#[derive(Default)]
struct Series {
    requests: f64,
    errors: f64,
    /// Non-cumulative counts per bucket of `BUCKETS`, then +Inf.
    buckets: [f64; BUCKETS.len() + 1],
    latency_sum: f64,
}

struct Cohort {
    name: &'static str,
    traffic: Traffic,
    series: Series,
}

struct State {
    cohorts: Vec<Cohort>,
    last: Instant,
    /// `sluice_guardrail_tripped` of the rollout; None: the series is not exported.
    guardrail_tripped: Option<f64>,
    guardrail_trips: u64,
}

impl State {
    /// Grows the counters for the time since the last call at the traffic then in force, so a
    /// change of traffic takes effect exactly from the moment it is made.
    fn advance(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        for c in &mut self.cohorts {
            let n = c.traffic.rps * dt;
            let s = &mut c.series;
            s.requests += n;
            s.errors += n * c.traffic.error_share;
            let i = BUCKETS
                .iter()
                .position(|le| c.traffic.latency_ms <= *le)
                .unwrap_or(BUCKETS.len());
            s.buckets[i] += n;
            s.latency_sum += n * c.traffic.latency_ms;
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let labels =
            |c: &Cohort| format!("sluice_rollout=\"{ROLLOUT}\",sluice_cohort=\"{}\"", c.name);
        out.push_str("# TYPE sluice_requests_total counter\n");
        for c in &self.cohorts {
            out += &format!(
                "sluice_requests_total{{{}}} {}\n",
                labels(c),
                c.series.requests
            );
        }
        out.push_str("# TYPE sluice_responses_5xx_total counter\n");
        for c in &self.cohorts {
            out += &format!(
                "sluice_responses_5xx_total{{{}}} {}\n",
                labels(c),
                c.series.errors
            );
        }
        out.push_str("# TYPE sluice_upstream_latency_ms histogram\n");
        for c in &self.cohorts {
            let mut cumulative = 0.0;
            for (i, count) in c.series.buckets.iter().enumerate() {
                cumulative += count;
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                out += &format!(
                    "sluice_upstream_latency_ms_bucket{{{},le=\"{le}\"}} {cumulative}\n",
                    labels(c)
                );
            }
            out += &format!(
                "sluice_upstream_latency_ms_sum{{{}}} {}\n",
                labels(c),
                c.series.latency_sum
            );
            out += &format!(
                "sluice_upstream_latency_ms_count{{{}}} {}\n",
                labels(c),
                c.series.requests
            );
        }
        if let Some(tripped) = self.guardrail_tripped {
            let rollout = format!("sluice_rollout=\"{ROLLOUT}\"");
            out += "# TYPE sluice_guardrail_tripped gauge\n";
            out += &format!("sluice_guardrail_tripped{{{rollout}}} {tripped}\n");
            out += "# TYPE sluice_guardrail_trips_total counter\n";
            out += &format!(
                "sluice_guardrail_trips_total{{{rollout}}} {}\n",
                self.guardrail_trips
            );
        }
        out
    }
}

/// Serves `/metrics` on a loopback port from a thread; stops on drop.
pub struct Exporter {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start(canary: Traffic, stable: Traffic) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            cohorts: vec![
                Cohort {
                    name: "canary",
                    traffic: canary,
                    series: Series::default(),
                },
                Cohort {
                    name: "stable",
                    traffic: stable,
                    series: Series::default(),
                },
            ],
            last: Instant::now(),
            guardrail_tripped: None,
            guardrail_trips: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                // A scrape that fails is a missed sample, which Prometheus tolerates; no need to stop.
                if let Ok(conn) = conn {
                    let _ = serve(conn, &st);
                }
            }
        });
        Exporter {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set(&self, cohort: &str, traffic: Traffic) {
        let mut s = self.state.lock().unwrap();
        s.advance();
        let c = s
            .cohorts
            .iter_mut()
            .find(|c| c.name == cohort)
            .expect("cohort");
        c.traffic = traffic;
    }

    /// Exports `sluice_guardrail_tripped` as 1 (the proxies cut the canary off) or 0, with the trip
    /// counter, from the next scrape on.
    pub fn set_guardrail_tripped(&self, tripped: bool) {
        let mut s = self.state.lock().unwrap();
        if tripped && s.guardrail_tripped != Some(1.0) {
            s.guardrail_trips += 1;
        }
        s.guardrail_tripped = Some(if tripped { 1.0 } else { 0.0 });
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        req.extend_from_slice(&buf[..n]);
    }
    let body = {
        let mut s = state.lock().unwrap();
        s.advance();
        s.render()
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A real `prometheus` process with its own config and data dir; killed and cleaned up on drop.
pub struct PromServer {
    pub url: String,
    child: Option<Child>,
    dir: PathBuf,
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PromServer {
    /// Starts Prometheus scraping `target` every second and waits until it is ready.
    pub fn start(target: SocketAddr) -> PromServer {
        // Another test may grab the port between free_port and Prometheus binding it; try again.
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::try_start(target) {
                Ok(p) => return p,
                Err(log) => last_log = log,
            }
        }
        panic!("prometheus did not become ready; its log:\n{last_log}");
    }

    fn try_start(target: SocketAddr) -> Result<PromServer, String> {
        let n = NEXT_DIR.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("prometheus-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        // scrape_timeout defaults to 10s, which Prometheus rejects when above the interval.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: sluice\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let spawned = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                if e.kind() == std::io::ErrorKind::NotFound {
                    panic!(
                        "the `prometheus` binary is not on PATH: run scripts/install-prometheus.sh"
                    );
                }
                panic!("starting prometheus: {e}");
            }
        };
        let mut server = PromServer {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(c) = server.child.as_mut() {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
            }
            if http_status(port, "/-/ready") == Some(200) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server.stop();
        Err(std::fs::read_to_string(server.dir.join("prometheus.log")).unwrap_or_default())
    }

    /// Kills the process (SIGKILL: a crashed or unreachable Prometheus, not a graceful shutdown).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PromServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status code of a plain HTTP GET, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1)?.parse().ok()
}
