//! A real Prometheus (Debian's package) on a free loopback port, scraping Envoy's stats every second.

use super::{free_port, http, Process};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    pub port: u16,
    _process: Process,
}

impl Prometheus {
    /// Scrapes `/stats/prometheus` of the Envoy admin port; data and config live under `dir`.
    pub fn start(dir: &Path, envoy_admin: u16) -> Prometheus {
        let port = free_port();
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: envoy\n  metrics_path: /stats/prometheus\n  static_configs: [{{targets: ['127.0.0.1:{envoy_admin}']}}]\n"
        );
        fs::create_dir_all(dir.join("prometheus-data")).unwrap();
        fs::write(dir.join("prometheus.yml"), config).unwrap();
        let log = fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus is installed (scripts/install-prometheus.sh)");
        let prometheus = Prometheus {
            port,
            _process: Process(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http::get(port, "/-/ready", &[]).is_ok_and(|r| r.status == 200) {
            assert!(Instant::now() < deadline, "Prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        prometheus
    }

    /// Waits for Prometheus' first scrape of Envoy: its target discovery sends the first targets only
    /// after about 5 s, and a test that times analysis rounds from a stage push must not count that.
    #[allow(dead_code)]
    pub fn wait_scraping(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let scraped = http::get(self.port, "/api/v1/query?query=up", &[])
                .is_ok_and(|r| String::from_utf8_lossy(&r.body).contains("\"job\":\"envoy\""));
            if scraped {
                return;
            }
            assert!(Instant::now() < deadline, "Prometheus never scraped Envoy");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
