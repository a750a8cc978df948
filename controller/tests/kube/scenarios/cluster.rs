//! An API server with state, answering by route, for the scenarios that run the whole controller
//! (`start`, `resync`, `leader`): the CRD, the Lease, one CohortRollout `shop/checkout`, the sluice
//! filter's resource `istio-system/sluice` (a WasmPlugin, or a TrafficExtension: both kinds are served,
//! as in Istio 1.30, and the other kind has no object), and watches on the three kinds. Like the real one, a write that carries a stale
//! `resourceVersion` is refused (409); a write stores the object at a new version and sends it to the
//! open watch as a MODIFIED event (held until a watch is open).

use crate::fixtures::*;
use crate::traffic_extension::EXTENSION_URI;
use http::{Method, Response};
use kube::client::Body;
use rollout::api::CohortRollout;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(super) const ROLLOUTS_PATH: &str = "/apis/sluice.dev/v1alpha1/cohortrollouts";
pub(super) const PLUGINS_PATH: &str = "/apis/extensions.istio.io/v1alpha1/wasmplugins";
pub(super) const EXTENSIONS_PATH: &str = "/apis/extensions.istio.io/v1alpha1/trafficextensions";
/// Discovery of the Istio extension kinds, asked before they are watched.
pub(super) const ISTIO_EXTENSIONS_GROUP: &str = "/apis/extensions.istio.io/v1alpha1";
const EVENTS_PATH: &str = "/apis/events.k8s.io/v1/namespaces/shop/events";

/// One watched kind: the watch request held open, and the events waiting for the next one.
#[derive(Default)]
struct Watch {
    open: Option<Answer>,
    waiting: Vec<Value>,
}

impl Watch {
    fn opened(&mut self, send: Answer) {
        if self.waiting.is_empty() {
            self.open = Some(send);
        } else {
            stream(send, &std::mem::take(&mut self.waiting));
        }
    }

    fn modified(&mut self, object: &Value) {
        let event = json!({"type": "MODIFIED", "object": object});
        match self.open.take() {
            // The watch ends after its events; the client watches again from the last version.
            Some(send) => stream(send, &[event]),
            None => self.waiting.push(event),
        }
    }
}

fn stream(send: Answer, events: &[Value]) {
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    let response = Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(lines.into_bytes()))
        .unwrap();
    send.send_response(response);
}

pub(super) struct Cluster {
    pub rollout: Value,
    pub plugin: Value,
    pub lease: Option<Value>,
    version: u64,
    rollouts: Watch,
    plugins: Watch,
    extensions: Watch,
    /// Every request so far, in order, as `METHOD path`.
    pub requests: Vec<String>,
}

/// The path of a request, without its query.
pub(super) fn path(call: &Call) -> &str {
    call.uri.split('?').next().unwrap()
}

impl Cluster {
    /// `plugin` is the WasmPlugin or TrafficExtension `istio-system/sluice`.
    pub fn new(rollout: Value, plugin: Value) -> Self {
        Cluster {
            rollout,
            plugin,
            lease: None,
            version: 100,
            rollouts: Watch::default(),
            plugins: Watch::default(),
            extensions: Watch::default(),
            requests: Vec::new(),
        }
    }

    fn on_extension(&self) -> bool {
        self.plugin["kind"] == "TrafficExtension"
    }

    /// The URI of the sluice filter's resource.
    pub fn plugin_uri(&self) -> &'static str {
        if self.on_extension() {
            EXTENSION_URI
        } else {
            PLUGIN_URI
        }
    }

    /// The plugin config in the sluice filter's resource.
    fn plugin_config_mut(&mut self) -> &mut Value {
        let pointer = if self.on_extension() {
            "/spec/wasm/pluginConfig"
        } else {
            "/spec/pluginConfig"
        };
        self.plugin.pointer_mut(pointer).unwrap()
    }

    /// The resource changed: its watch hears of it.
    fn plugin_modified(&mut self) {
        let watch = if self.on_extension() {
            &mut self.extensions
        } else {
            &mut self.plugins
        };
        watch.modified(&self.plugin);
    }

    fn next_version(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }

    /// The next request that is not a watch, within `limit`; watches are held open (or answered with
    /// the events waiting for them) on the way. `None` when none came in time.
    pub async fn next_within(
        &mut self,
        api: &mut ApiServerVerifier,
        limit: Duration,
    ) -> Option<(Call, Answer)> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (call, send) = tokio::time::timeout(left, api.next_call_or_end())
                .await
                .ok()?
                .expect("the controller stopped");
            self.requests
                .push(format!("{} {}", call.method, path(&call)));
            if !call.uri.contains("watch=true") {
                return Some((call, send));
            }
            match path(&call) {
                ROLLOUTS_PATH => self.rollouts.opened(send),
                PLUGINS_PATH => self.plugins.opened(send),
                EXTENSIONS_PATH => self.extensions.opened(send),
                other => panic!("unexpected watch of {other}"),
            }
        }
    }

    /// The next request that is not a watch (failing the test after 5 s without one).
    pub async fn next(&mut self, api: &mut ApiServerVerifier) -> (Call, Answer) {
        self.next_within(api, Duration::from_secs(5))
            .await
            .expect("no request within 5 s")
    }

    /// Answers every request for `duration`, each first shown to `check`.
    pub async fn serve_for(
        &mut self,
        api: &mut ApiServerVerifier,
        duration: Duration,
        check: impl Fn(&Call),
    ) {
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some((call, send)) = self.next_within(api, left).await else {
                return;
            };
            check(&call);
            self.answer(&call, send);
        }
    }

    /// Someone else writes the resource's plugin config (a person re-applying it, say).
    pub fn plugin_config_written(&mut self, plugin_config: Value) {
        *self.plugin_config_mut() = plugin_config;
        self.plugin["metadata"]["resourceVersion"] = json!(self.next_version());
        self.plugin_modified();
    }

    /// Someone else sets an annotation of the rollout (`sluice pause`, say).
    pub fn rollout_annotated(&mut self, key: &str, value: &str) {
        self.rollout["metadata"]["annotations"][key] = json!(value);
        self.rollout["metadata"]["resourceVersion"] = json!(self.next_version());
        self.rollouts.modified(&self.rollout);
    }

    /// Answers `call` as the API server would.
    pub fn answer(&mut self, call: &Call, send: Answer) {
        let rollout_path = rollout_uri("checkout");
        let status_path = status_uri("checkout");
        let (code, body) = match (&call.method, path(call)) {
            (&Method::GET, CRD_URI) => (
                200,
                serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd()).unwrap(),
            ),
            (&Method::GET, LEASE_URI) => match &self.lease {
                Some(lease) => (200, lease.clone()),
                None => (
                    404,
                    failure(404, "NotFound", "leases \"sluice-controller\" not found"),
                ),
            },
            (&Method::POST, LEASES_URI) if self.lease.is_some() => (
                409,
                failure(
                    409,
                    "AlreadyExists",
                    "leases \"sluice-controller\" already exists",
                ),
            ),
            (&Method::POST, LEASES_URI) | (&Method::PUT, LEASE_URI) => {
                let stored = self
                    .lease
                    .as_ref()
                    .map(|l| &l["metadata"]["resourceVersion"]);
                if call.method == Method::PUT
                    && stored != Some(&call.body["metadata"]["resourceVersion"])
                {
                    (
                        409,
                        failure(409, "Conflict", "the object has been modified"),
                    )
                } else {
                    let mut written = call.body.clone();
                    written["metadata"]["resourceVersion"] = json!(self.next_version());
                    self.lease = Some(written.clone());
                    (200, written)
                }
            }
            (&Method::GET, ROLLOUTS_PATH) => (
                200,
                self.list("sluice.dev/v1alpha1", "CohortRolloutList", &self.rollout),
            ),
            (&Method::GET, PLUGINS_PATH) => {
                let items = self.items(!self.on_extension());
                (200, self.list_of("WasmPluginList", items))
            }
            (&Method::GET, ISTIO_EXTENSIONS_GROUP) => (200, istio_extension_kinds()),
            (&Method::GET, EXTENSIONS_PATH) => {
                let items = self.items(self.on_extension());
                (200, self.list_of("TrafficExtensionList", items))
            }
            (&Method::GET, p) if p == status_path => (200, self.rollout.clone()),
            (&Method::GET, p) if p == self.plugin_uri() => (200, self.plugin.clone()),
            (&Method::PATCH, p) if p == status_path || p == rollout_path => {
                if let Some(stale) = stale(call, &self.rollout) {
                    stale
                } else {
                    if p == status_path {
                        self.rollout["status"] = call.body["status"].clone();
                    } else {
                        self.rollout["metadata"]["finalizers"] =
                            call.body["metadata"]["finalizers"].clone();
                    }
                    self.rollout["metadata"]["resourceVersion"] = json!(self.next_version());
                    self.rollouts.modified(&self.rollout);
                    (200, self.rollout.clone())
                }
            }
            (&Method::PATCH, p) if p == self.plugin_uri() => {
                if let Some(stale) = stale(call, &self.plugin) {
                    stale
                } else {
                    let written = if self.on_extension() {
                        call.body["spec"]["wasm"]["pluginConfig"].clone()
                    } else {
                        call.body["spec"]["pluginConfig"].clone()
                    };
                    *self.plugin_config_mut() = written;
                    self.plugin["metadata"]["resourceVersion"] = json!(self.next_version());
                    self.plugin_modified();
                    (200, self.plugin.clone())
                }
            }
            (&Method::POST, EVENTS_PATH) => (201, call.body.clone()),
            _ => panic!("unexpected request {} {}", call.method, call.uri),
        };
        reply(send, code, &body);
    }

    fn list(&self, api_version: &str, kind: &str, item: &Value) -> Value {
        json!({
            "apiVersion": api_version, "kind": kind,
            "metadata": {"resourceVersion": self.version.to_string()}, "items": [item],
        })
    }

    /// The sluice filter's resource when `this_kind` is its kind; nothing otherwise.
    fn items(&self, this_kind: bool) -> Vec<Value> {
        this_kind.then(|| self.plugin.clone()).into_iter().collect()
    }

    fn list_of(&self, kind: &str, items: Vec<Value>) -> Value {
        json!({
            "apiVersion": "extensions.istio.io/v1alpha1", "kind": kind,
            "metadata": {"resourceVersion": self.version.to_string()}, "items": items,
        })
    }
}

/// The 409 for a write whose `resourceVersion` is not the stored one (a write without one applies).
fn stale(call: &Call, stored: &Value) -> Option<(u16, Value)> {
    let version = call.body["metadata"].get("resourceVersion")?;
    (version != &stored["metadata"]["resourceVersion"]).then(|| {
        (
            409,
            failure(409, "Conflict", "the object has been modified"),
        )
    })
}

/// The APIResourceList of `extensions.istio.io/v1alpha1` in Istio 1.30: both kinds served.
pub(super) fn istio_extension_kinds() -> Value {
    let kind = |name: &str, kind: &str| {
        json!({"name": name, "singularName": "", "namespaced": true, "kind": kind,
               "verbs": ["get", "list", "watch", "patch"]})
    };
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "extensions.istio.io/v1alpha1",
        "resources": [kind("trafficextensions", "TrafficExtension"), kind("wasmplugins", "WasmPlugin")],
    })
}
