//! Simulated users across regions and cities sending requests through Envoy, and a webhook receiver.

use super::http;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Record {
    pub at: Instant,
    pub user: String,
    pub city: &'static str,
    pub version: String,
    pub status: u16,
}

/// Users, each with a fixed city (and its region), requesting in a loop until dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub records: Arc<Mutex<Vec<Record>>>,
}

impl Load {
    pub fn start(
        port: u16,
        cities: &'static [(&'static str, &'static str)],
        users_per_city: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let records = Arc::new(Mutex::new(Vec::new()));
        let users: Vec<(String, &'static str, &'static str)> = cities
            .iter()
            .flat_map(|&(city, region)| {
                (0..users_per_city).map(move |i| (format!("{city}-user-{i}"), city, region))
            })
            .collect();
        let users = Arc::new(users);
        let threads = (0..4)
            .map(|t| {
                let (stop, records, users) = (stop.clone(), records.clone(), users.clone());
                std::thread::spawn(move || {
                    let mut i = t;
                    // Bounded: a test that forgets to stop its load still ends.
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let (user, city, region) = &users[i % users.len()];
                        i += 4;
                        let headers: [(&str, &[u8]); 3] = [
                            ("x-user-id", user.as_bytes()),
                            ("x-geo-region", region.as_bytes()),
                            ("x-geo-city", city.as_bytes()),
                        ];
                        if let Ok(r) = http::get(port, "/", &headers) {
                            let version =
                                String::from_utf8_lossy(r.header("x-served-by").unwrap_or(b"?"))
                                    .into_owned();
                            let record = Record {
                                at: Instant::now(),
                                user: user.clone(),
                                city,
                                version,
                                status: r.status,
                            };
                            records.lock().unwrap().push(record);
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            stop,
            threads,
            records,
        }
    }

    pub fn since(&self, t: Instant) -> Vec<Record> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.at >= t)
            .cloned()
            .collect()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Accepts webhook POSTs and keeps their JSON bodies.
pub struct WebhookReceiver {
    pub port: u16,
    pub bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // Read headers, then exactly content-length bytes of body.
                let body = loop {
                    let n = stream.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + len {
                        break Some(raw[end + 4..end + 4 + len].to_vec());
                    }
                };
                if let Some(value) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                    kept.lock().unwrap().push(value);
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        WebhookReceiver { port, bodies }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }
}
