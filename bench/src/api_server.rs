//! An in-memory Kubernetes API server for the controller benchmark: the controller's real client and
//! stores talk to it as to the real one (JSON over `kube::Client`), so the figures include their
//! parse, merge, compile and serialize work. It keeps WasmPlugins and CohortRollouts as the JSON it
//! serves, answers a stale `resourceVersion` with 409, takes Events, counts the applies of each
//! WasmPlugin, and measures the time it spends answering, so that its share of the process CPU can
//! be told apart from the controller's (a monotonic clock: this thread's CPU clock costs a system
//! call per read, which would itself weigh on the figures).
//!
//! Only what the controller's rounds send is served: GET and server-side apply of a WasmPlugin and
//! of a CohortRollout's status, and POST of an Event.

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

const PLUGINS: &str = "/apis/extensions.istio.io/v1alpha1/namespaces/";
const ROLLOUTS: &str = "/apis/sluice.dev/v1alpha1/namespaces/";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/";

#[derive(Default)]
pub struct State {
    /// `namespace/name` -> (resourceVersion, the WasmPlugin as served).
    plugins: HashMap<String, (u64, Vec<u8>)>,
    /// `namespace/name` -> (resourceVersion, its spec, its status as served).
    rollouts: HashMap<String, Rollout>,
    next_version: u64,
    /// Applies of each WasmPlugin (`namespace/name`).
    pub applies: HashMap<String, u64>,
    pub conflicts: u64,
    pub events: u64,
    pub requests: u64,
    /// Time spent answering, in ns (single-threaded, so about its CPU): the API server's work, not
    /// the controller's.
    pub cpu_ns: u64,
}

struct Rollout {
    version: u64,
    spec: String,
    status: Option<Vec<u8>>,
}

/// The API server as a `tower` service for `kube::Client::new`.
#[derive(Clone, Default)]
pub struct ApiServer(pub Arc<Mutex<State>>);

impl ApiServer {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A WasmPlugin `namespace/name` carrying `plugin_config` (JSON).
    pub fn add_plugin(&self, namespace: &str, name: &str, plugin_config: &str) {
        let mut state = self.state();
        let version = state.bump();
        let served = format!(
            r#"{{"apiVersion":"extensions.istio.io/v1alpha1","kind":"WasmPlugin","metadata":{{"name":"{name}","namespace":"{namespace}","resourceVersion":"{version}"}},"spec":{{"pluginConfig":{plugin_config}}}}}"#
        );
        let key = format!("{namespace}/{name}");
        state.plugins.insert(key, (version, served.into_bytes()));
    }

    /// A CohortRollout `namespace/name` with `spec` (JSON), no status yet.
    pub fn add_rollout(&self, namespace: &str, name: &str, spec: String) {
        let mut state = self.state();
        let version = state.bump();
        let rollout = Rollout {
            version,
            spec,
            status: None,
        };
        state
            .rollouts
            .insert(format!("{namespace}/{name}"), rollout);
    }

    /// Bytes kept for the objects: what a real controller would not hold itself.
    pub fn stored_bytes(&self) -> usize {
        let state = self.state();
        let plugins: usize = state.plugins.values().map(|(_, b)| b.len()).sum();
        let rollouts: usize = state
            .rollouts
            .values()
            .map(|r| r.spec.len() + r.status.as_ref().map_or(0, Vec::len))
            .sum();
        plugins + rollouts
    }
}

impl Rollout {
    /// The CohortRollout as served.
    fn served(&self, key: &str) -> Vec<u8> {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let mut served = format!(
            r#"{{"apiVersion":"sluice.dev/v1alpha1","kind":"CohortRollout","metadata":{{"name":"{name}","namespace":"{namespace}","uid":"uid-{name}","generation":1,"resourceVersion":"{}"}},"spec":{}"#,
            self.version, self.spec
        )
        .into_bytes();
        if let Some(status) = &self.status {
            served.extend_from_slice(br#","status":"#);
            served.extend_from_slice(status);
        }
        served.push(b'}');
        served
    }
}

impl State {
    fn bump(&mut self) -> u64 {
        self.next_version += 1;
        self.next_version
    }

    fn answer(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
        self.requests += 1;
        if let Some(rest) = path.strip_prefix(PLUGINS) {
            let key = rest.replacen("/wasmplugins/", "/", 1);
            return match *method {
                Method::GET => match self.plugins.get(&key) {
                    Some((_, served)) => (StatusCode::OK, served.clone()),
                    None => not_found(&key),
                },
                Method::PATCH => self.apply_plugin(key, body),
                _ => not_found(path),
            };
        }
        if let Some(rest) = path.strip_prefix(ROLLOUTS) {
            let key = rest
                .replacen("/cohortrollouts/", "/", 1)
                .trim_end_matches("/status")
                .to_string();
            return match *method {
                Method::GET => match self.rollouts.get(&key) {
                    Some(r) => (StatusCode::OK, r.served(&key)),
                    None => not_found(&key),
                },
                Method::PATCH => self.apply_status(&key, body),
                _ => not_found(path),
            };
        }
        if path.starts_with(EVENTS) && *method == Method::POST {
            self.events += 1;
            return (StatusCode::CREATED, body.to_vec());
        }
        not_found(path)
    }

    /// Server-side apply of `spec.pluginConfig`: the body, at a new resourceVersion.
    fn apply_plugin(&mut self, key: String, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let version = self.bump();
        let Some((stored, served)) = self.plugins.get_mut(&key) else {
            return not_found(&key);
        };
        let Some((at, sent)) = resource_version(body) else {
            return (StatusCode::BAD_REQUEST, b"{}".to_vec());
        };
        if sent != *stored {
            self.conflicts += 1;
            return conflict(&key);
        }
        *stored = version;
        let mut next = Vec::with_capacity(body.len() + 8);
        next.extend_from_slice(&body[..at.start]);
        next.extend_from_slice(version.to_string().as_bytes());
        next.extend_from_slice(&body[at.end..]);
        served.clone_from(&next);
        *self.applies.entry(key).or_default() += 1;
        (StatusCode::OK, next)
    }

    /// Server-side apply of a status: the rollout with that status, at a new resourceVersion.
    fn apply_status(&mut self, key: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let version = self.bump();
        let Some(rollout) = self.rollouts.get_mut(key) else {
            return not_found(key);
        };
        let sent = resource_version(body).map(|(_, v)| v);
        if sent != Some(rollout.version) {
            self.conflicts += 1;
            return conflict(key);
        }
        // The apply body's keys are sorted; `status` is its last, and only the metadata is before it.
        let Some(at) = find(body, br#""status":"#) else {
            return (StatusCode::BAD_REQUEST, b"{}".to_vec());
        };
        let status = &body[at + 9..body.len().saturating_sub(1)];
        rollout.status = Some(status.to_vec());
        rollout.version = version;
        (StatusCode::OK, rollout.served(key))
    }
}

/// Where the first `"resourceVersion":"N"` holds N in `body`, and N.
fn resource_version(body: &[u8]) -> Option<(std::ops::Range<usize>, u64)> {
    let key = br#""resourceVersion":""#;
    let start = find(body, key)? + key.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    let version = std::str::from_utf8(&body[start..start + len])
        .ok()?
        .parse()
        .ok()?;
    Some((start..start + len, version))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn failure(code: u16, reason: &str, message: &str) -> Vec<u8> {
    format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"{message}","reason":"{reason}","code":{code}}}"#
    )
    .into_bytes()
}

fn not_found(what: &str) -> (StatusCode, Vec<u8>) {
    (
        StatusCode::NOT_FOUND,
        failure(404, "NotFound", &format!("{what} not found")),
    )
}

fn conflict(what: &str) -> (StatusCode, Vec<u8>) {
    let message = format!("the object {what} has been modified");
    (StatusCode::CONFLICT, failure(409, "Conflict", &message))
}

type Answer = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl tower_service::Service<Request<Body>> for ApiServer {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Answer {
        let server = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await.unwrap_or_default();
            let started = Instant::now();
            let (status, answer) = server
                .state()
                .answer(&parts.method, parts.uri.path(), &body);
            let mut response = Response::new(Body::from(answer));
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            let spent = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            server.state().cpu_ns += spent;
            Ok(response)
        })
    }
}
