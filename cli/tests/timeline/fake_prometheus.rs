//! A tiny fake Prometheus answering `/api/v1/query_range` with the metrics the filter would show for
//! the test's history: the canary starts failing at step 2 and gets no traffic after the rollback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// 2025-11-24 16:00:00 UTC.
pub const T0: u64 = 1_764_000_000;
/// The history's rollback: the canary gets no traffic after it.
pub const ROLLBACK: u64 = T0 + 160;

/// The canary's share, success rate and p99 at `t`, as the filter's metrics would show them: the
/// canary starts failing at step 2 and gets no traffic after the rollback.
fn canary_at(t: u64) -> Option<(f64, f64, f64)> {
    let share = match t {
        _ if !(T0..ROLLBACK).contains(&t) => return None,
        _ if t < T0 + 60 => 1.0,
        _ if t < T0 + 120 => 10.0,
        _ => 50.0,
    };
    let failing = t >= T0 + 135;
    let wobble = ((t % 7) as f64) * 0.05;
    Some((
        share + wobble,
        if failing { 61.2 } else { 99.8 + wobble / 5.0 },
        if failing { 180.0 } else { 42.0 + wobble * 10.0 },
    ))
}

/// (unix seconds, value)
type Points = Vec<(u64, f64)>;

fn matrix(series: Vec<(Option<&str>, Points)>) -> String {
    let result: Vec<serde_json::Value> = series
        .into_iter()
        .map(|(cohort, points)| {
            let metric = match cohort {
                Some(c) => serde_json::json!({ "sluice_cohort": c }),
                None => serde_json::json!({}),
            };
            let values: Vec<serde_json::Value> = points
                .iter()
                .map(|(t, v)| serde_json::json!([t, v.to_string()]))
                .collect();
            serde_json::json!({ "metric": metric, "values": values })
        })
        .collect();
    serde_json::json!({ "status": "success", "data": { "resultType": "matrix", "result": result } })
        .to_string()
}

fn answer(query: &str, start: u64, end: u64, step: u64) -> String {
    let times: Vec<u64> = (start..=end).step_by(step.max(1) as usize).collect();
    let canary = |pick: fn((f64, f64, f64)) -> f64| -> Vec<(u64, f64)> {
        times
            .iter()
            .filter_map(|t| canary_at(*t).map(|c| (*t, pick(c))))
            .collect()
    };
    let stable = |v: f64| -> Vec<(u64, f64)> {
        times
            .iter()
            .map(|t| (*t, v + ((t % 5) as f64) * 0.02))
            .collect()
    };
    if query.contains("histogram_quantile") {
        matrix(vec![
            (Some("canary"), canary(|c| c.2)),
            (Some("stable"), stable(38.0)),
        ])
    } else if query.contains("sluice_responses_5xx_total") {
        matrix(vec![
            (Some("canary"), canary(|c| c.1)),
            (Some("stable"), stable(99.85)),
        ])
    } else {
        let share = times
            .iter()
            .map(|t| (*t, canary_at(*t).map_or(0.0, |c| c.0)))
            .collect();
        matrix(vec![(None, share)])
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Serves query_range answers on an ephemeral port; returns its URL and the queries it was asked.
pub fn fake_prometheus() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = asked.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let target = request_line.split_whitespace().nth(1).unwrap_or("");
            let (path, params) = target.split_once('?').unwrap_or((target, ""));
            let param = |name: &str| {
                params
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(decode)
                    .unwrap_or_default()
            };
            let body = if path == "/api/v1/query_range" {
                let query = param("query");
                log.lock().unwrap().push(query.clone());
                let num = |n: &str| param(n).parse::<f64>().unwrap() as u64;
                answer(&query, num("start"), num("end"), num("step"))
            } else {
                r#"{"status":"error","errorType":"bad_data","error":"not here"}"#.to_string()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).unwrap();
            stream.write_all(body.as_bytes()).unwrap();
        }
    });
    (url, asked)
}
