//! An in-memory Kubernetes API server for the controller benchmark, run in a process of its own
//! (`api_http`) so that the controller's process holds only the controller: its real client, cache
//! and stores talk to it over HTTP as to the real one, so the figures include their parse, merge,
//! compile and serialize work. It keeps WasmPlugins and CohortRollouts as the JSON it serves,
//! answers a stale `resourceVersion` with 409, takes Events, counts the applies of each WasmPlugin,
//! and sends every write to the open watches of its kind, as the real one does.
//!
//! Only what the controller sends is served: list and watch of WasmPlugins and CohortRollouts, GET
//! and server-side apply of a WasmPlugin and of a CohortRollout's status, and POST of an Event.

use http::{Method, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc::UnboundedSender;

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
    /// The open watches: of CohortRollouts (`true`) or WasmPlugins, each sent every write's event.
    watches: Vec<(bool, UnboundedSender<Vec<u8>>)>,
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

    /// A page of the list of CohortRollouts (`rollouts`) or WasmPlugins of `namespace`, as served:
    /// at most `limit` items (all when 0), from the `continue` token `from` (an item's position in
    /// name order), as the real API server pages the watcher's list (500 at a time).
    pub fn list(&self, rollouts: bool, namespace: &str, limit: usize, from: usize) -> Vec<u8> {
        let prefix = format!("{namespace}/");
        let mut keys: Vec<&String> = if rollouts {
            self.rollouts.keys().collect()
        } else {
            self.plugins.keys().collect()
        };
        keys.retain(|k| k.starts_with(&prefix));
        keys.sort();
        let limit = if limit == 0 { keys.len() } else { limit };
        let page = keys.iter().skip(from).take(limit);
        let items: Vec<Vec<u8>> = page
            .filter_map(|key| match rollouts {
                true => self.rollouts.get(*key).map(|r| r.served(key)),
                false => self.plugins.get(*key).map(|(_, served)| served.clone()),
            })
            .collect();
        let (api_version, kind) = if rollouts {
            ("sluice.dev/v1alpha1", "CohortRolloutList")
        } else {
            ("extensions.istio.io/v1alpha1", "WasmPluginList")
        };
        let more = from + limit < keys.len();
        let next = if more {
            format!(r#","continue":"{}""#, from + limit)
        } else {
            String::new()
        };
        let mut list = format!(
            r#"{{"apiVersion":"{api_version}","kind":"{kind}","metadata":{{"resourceVersion":"{}"{next}}},"items":["#,
            self.next_version
        )
        .into_bytes();
        list.extend_from_slice(&items.join(&b","[..]));
        list.extend_from_slice(b"]}");
        list
    }

    /// From now on, every write of a CohortRollout (`rollouts`) or WasmPlugin goes to `watch`.
    pub fn watch(&mut self, rollouts: bool, watch: UnboundedSender<Vec<u8>>) {
        self.watches.push((rollouts, watch));
    }

    fn modified(&mut self, rollouts: bool, object: &[u8]) {
        let mut event = br#"{"type":"MODIFIED","object":"#.to_vec();
        event.extend_from_slice(object);
        event.extend_from_slice(b"}\n");
        // A watch whose client is gone is dropped.
        self.watches
            .retain(|(kind, watch)| *kind != rollouts || watch.send(event.clone()).is_ok());
    }

    /// Pads the history of every CohortRollout status to `len` decisions, as a rollout that has run
    /// a while has (status carries at most 50), each a copy of its last one; the watches hear of it.
    pub fn fill_history(&mut self, len: usize) {
        let keys: Vec<String> = self.rollouts.keys().cloned().collect();
        for key in keys {
            let version = self.bump();
            let Some(rollout) = self.rollouts.get_mut(&key) else {
                continue;
            };
            let Some(status) = &rollout.status else {
                continue;
            };
            let Ok(mut status) = serde_json::from_slice::<serde_json::Value>(status) else {
                continue;
            };
            if let Some(history) = status["history"].as_array_mut() {
                if let Some(last) = history.last().cloned() {
                    let missing = len.saturating_sub(history.len());
                    history.splice(0..0, std::iter::repeat_n(last, missing));
                }
            }
            rollout.status = serde_json::to_vec(&status).ok();
            rollout.version = version;
            let served = rollout.served(&key);
            self.modified(true, &served);
        }
    }

    pub fn answer(&mut self, method: &Method, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
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
        self.modified(false, &next);
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
        let served = rollout.served(key);
        self.modified(true, &served);
        (StatusCode::OK, served)
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
