//! Steady traffic of many users through Envoy, as fast as a few threads can send it, recording which
//! version answered each request and when.

use super::http;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Served {
    pub sent: Instant,
    pub answered: Instant,
    pub user: String,
    /// `x-served-by` of the answer (`stable`, `canary`), `?` without one, `error` without an answer.
    pub version: String,
    pub status: u16,
}

/// `threads` closed loops, each cycling through its own `users_per_thread` users (`user-<t>-<i>`,
/// sent as `x-user-id`), until stopped or dropped.
pub struct Users {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    served: Arc<Mutex<Vec<Served>>>,
}

impl Users {
    pub fn start(port: u16, threads: usize, users_per_thread: usize) -> Users {
        Users::paced(port, threads, users_per_thread, Duration::ZERO)
    }

    /// Like [`Users::start`], each thread pausing `pause` between requests: a load that leaves the
    /// machine idle time, so latency measures the path rather than the queue for a CPU.
    pub fn paced(port: u16, threads: usize, users_per_thread: usize, pause: Duration) -> Users {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|t| {
                let (stop, served) = (stop.clone(), served.clone());
                std::thread::spawn(move || {
                    // Bounded: a test that forgets to stop its users still ends.
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let user = format!("user-{t}-{}", i % users_per_thread);
                        i += 1;
                        let sent = Instant::now();
                        let answer = http::get(port, "/", &[("x-user-id", user.as_bytes())]);
                        let (version, status) = match &answer {
                            Ok(r) => (
                                match r.header("x-served-by") {
                                    Some(v) => String::from_utf8_lossy(v).into_owned(),
                                    // Envoy's own reply: its body says why.
                                    None => format!(
                                        "? {}",
                                        String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
                                    ),
                                },
                                r.status,
                            ),
                            Err(_) => ("error".to_string(), 0),
                        };
                        served.lock().unwrap().push(Served {
                            sent,
                            answered: Instant::now(),
                            user,
                            version,
                            status,
                        });
                        if !pause.is_zero() {
                            std::thread::sleep(pause);
                        }
                    }
                })
            })
            .collect();
        Users {
            stop,
            threads,
            served,
        }
    }

    /// How many requests have been answered so far.
    pub fn count(&self) -> usize {
        self.served.lock().unwrap().len()
    }

    /// Every request answered so far.
    pub fn served(&self) -> Vec<Served> {
        self.served.lock().unwrap().clone()
    }

    /// Stops the users and returns every request they sent.
    pub fn stop(mut self) -> Vec<Served> {
        self.halt();
        self.served()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        self.halt();
    }
}
