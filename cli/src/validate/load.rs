//! Reading the files: each YAML document (`---`) or JSON file, sorted into what sluice reads (a sluice
//! config, the WasmPlugin or TrafficExtension carrying one, a CohortRollout) and what it does not
//! (noted, skipped). Parse errors are reported here, with the path and line the parser gives.

use super::report::{At, Report};
use super::schema;
use kube::Resource;
use rollout::api::{CohortRollout, ConfigKind};
use rollout::entry::ALLOWED_NAMESPACES_ANNOTATION;
use serde::Deserialize;
use serde_yaml::Value;
use std::path::Path;

/// The top-level fields of a sluice config: a document with none of them is somebody else's.
const CONFIG_FIELDS: [&str; 6] = [
    "generation",
    "geo",
    "cities",
    "identity",
    "overrides",
    "rollouts",
];

pub enum Item {
    Config(ConfigDoc),
    Rollout(Box<RolloutDoc>),
}

/// A sluice config: a bare one (the filter's own document, as an ECDS file carries it), or the one a
/// WasmPlugin or TrafficExtension carries.
pub struct ConfigDoc {
    pub at: At,
    pub carrier: Option<Carrier>,
    /// The JSON bytes the filter would read; None when the carrier has no config.
    pub bytes: Option<Vec<u8>>,
    /// It has a sluice config's fields (a carrier without them may be another filter's).
    pub sluice_like: bool,
    /// Written as YAML and handed over as JSON (as Istio does): a parser's line and column are the
    /// JSON's, not the file's.
    pub converted: bool,
}

/// The Istio resource carrying a sluice config.
pub struct Carrier {
    pub kind: ConfigKind,
    pub namespace: String,
    pub name: String,
    /// `sluice.dev/allowed-namespaces`.
    pub allowed: Option<String>,
}

impl Carrier {
    /// Where the config sits in the resource.
    pub fn config_path(&self) -> &'static str {
        match self.kind {
            ConfigKind::WasmPlugin => "spec.pluginConfig",
            ConfigKind::TrafficExtension => "spec.wasm.pluginConfig",
        }
    }
}

pub struct RolloutDoc {
    pub at: At,
    pub namespace: String,
    pub name: String,
    pub rollout: CohortRollout,
}

/// The documents of `path` that sluice reads; everything else is reported or noted.
pub fn load(path: &Path, namespace: &str, report: &mut Report) -> Vec<Item> {
    let file = path.display().to_string();
    let at = |document: usize, object: &str| At {
        file: file.clone(),
        document,
        object: object.to_string(),
    };
    let read = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).map(|_| bytes)
    } else {
        std::fs::read(path)
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(e) => {
            report.error(&at(0, ""), ".", "", format!("cannot read: {e}"));
            return Vec::new();
        }
    };
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if json {
        let bare = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) if map.contains_key("kind") => false,
            Ok(serde_json::Value::Object(map)) => {
                let sluice_like = CONFIG_FIELDS.iter().any(|f| map.contains_key(*f));
                if !sluice_like {
                    report.documents.push((file.clone(), 1));
                    report.note(
                        &at(1, ""),
                        "not a sluice config nor a Kubernetes object: skipped",
                    );
                    return Vec::new();
                }
                true
            }
            Ok(_) => {
                report.documents.push((file.clone(), 1));
                report.note(&at(1, ""), "not a JSON object: skipped");
                return Vec::new();
            }
            // Not JSON at all: the filter's own parser says where.
            Err(_) => true,
        };
        if bare {
            report.documents.push((file.clone(), 1));
            return vec![Item::Config(ConfigDoc {
                at: at(1, "sluice config"),
                carrier: None,
                bytes: Some(bytes),
                sluice_like: true,
                converted: false,
            })];
        }
    }
    let Ok(text) = String::from_utf8(bytes) else {
        report.error(&at(0, ""), ".", "", "not UTF-8 text");
        return Vec::new();
    };
    let mut values = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        match Value::deserialize(document) {
            Ok(value) => values.push(value),
            Err(e) => {
                // The parser cannot resume after a syntax error: later documents are not read.
                let (field, message) = yaml_error(&e);
                report.error(&at(i + 1, ""), &field, "", message);
                break;
            }
        }
    }
    let served = CohortRollout::api_version(&());
    let count = values.iter().filter(|v| !v.is_null()).count();
    report.documents.push((file.clone(), count));
    let mut items = Vec::new();
    let mut rollouts = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let document = i + 1;
        let Value::Mapping(map) = value else {
            if !value.is_null() {
                report.note(&at(document, ""), "not a mapping: skipped");
            }
            continue;
        };
        let text_of = |key: &str| map.get(key).and_then(Value::as_str).unwrap_or_default();
        let (kind, api_version) = (text_of("kind"), text_of("apiVersion"));
        let meta = |key: &str| value.get("metadata").and_then(|m| m.get(key));
        let name = meta("name").and_then(Value::as_str).unwrap_or_default();
        let named_ns = meta("namespace").and_then(Value::as_str);
        let ns = named_ns.unwrap_or(namespace);
        let object = format!("{kind} {ns}/{name}");
        let istio = api_version.starts_with("extensions.istio.io/");
        let carrier_kind = match kind {
            "WasmPlugin" if istio => Some(ConfigKind::WasmPlugin),
            "TrafficExtension" if istio => Some(ConfigKind::TrafficExtension),
            _ => None,
        };
        if kind == "CohortRollout" && api_version != served {
            let at = at(document, &object);
            let why = format!("the CohortRollout CRD serves {served}");
            report.error(&at, "apiVersion", &format!("{api_version:?}"), why);
        } else if kind == "CohortRollout" {
            let at = at(document, &object);
            schema::unknown_fields(value, &at, report);
            rollouts.push((i, at, ns.to_string(), name.to_string()));
        } else if let Some(kind) = carrier_kind {
            let carrier = Carrier {
                kind,
                namespace: ns.to_string(),
                name: name.to_string(),
                allowed: meta("annotations")
                    .and_then(|a| a.get(ALLOWED_NAMESPACES_ANNOTATION))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            let config = match kind {
                ConfigKind::WasmPlugin => value.get("spec").and_then(|s| s.get("pluginConfig")),
                ConfigKind::TrafficExtension => value
                    .get("spec")
                    .and_then(|s| s.get("wasm"))
                    .and_then(|w| w.get("pluginConfig")),
            };
            let at = at(document, &object);
            items.push(Item::Config(config_doc(at, Some(carrier), config, report)));
        } else if kind.is_empty() && api_version.is_empty() {
            let sluice_like = CONFIG_FIELDS.iter().any(|f| map.contains_key(*f));
            if sluice_like {
                let at = at(document, "sluice config");
                items.push(Item::Config(config_doc(at, None, Some(value), report)));
            } else {
                let note = "not a sluice config nor a Kubernetes object: skipped";
                report.note(&at(document, ""), note);
            }
        } else {
            // As written: a cluster-scoped object has no namespace.
            let object = match named_ns {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}").trim_end().to_string(),
            };
            let note = format!("{object} ({api_version}): not a sluice kind, skipped");
            report.note(&at(document, &object), note);
        }
    }
    items.extend(typed_rollouts(&text, rollouts, report));
    items
}

fn config_doc(
    at: At,
    carrier: Option<Carrier>,
    config: Option<&Value>,
    report: &mut Report,
) -> ConfigDoc {
    let sluice_like = config
        .and_then(Value::as_mapping)
        .is_some_and(|m| CONFIG_FIELDS.iter().any(|f| m.contains_key(*f)));
    let bytes = config.and_then(|c| match serde_json::to_vec(c) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            let path = carrier.as_ref().map_or(".", Carrier::config_path);
            report.error(&at, path, "", format!("not JSON: {e}"));
            None
        }
    });
    ConfigDoc {
        at,
        carrier,
        bytes,
        sluice_like,
        converted: true,
    }
}

/// The CohortRollouts parsed again from the text, typed: serde_yaml then names the path and the line
/// of a field of the wrong type (the value tree has lost both).
fn typed_rollouts(
    text: &str,
    mut wanted: Vec<(usize, At, String, String)>,
    report: &mut Report,
) -> Vec<Item> {
    let mut items = Vec::new();
    wanted.reverse();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let Some((index, ..)) = wanted.last() else {
            break;
        };
        if *index != i {
            // Read once already, without error.
            let _ = serde::de::IgnoredAny::deserialize(document);
            continue;
        }
        let Some((_, at, namespace, name)) = wanted.pop() else {
            break;
        };
        match CohortRollout::deserialize(document) {
            Ok(_) if name.is_empty() => report.error(&at, "metadata.name", "", "required"),
            Ok(rollout) => items.push(Item::Rollout(Box::new(RolloutDoc {
                at,
                namespace,
                name,
                rollout,
            }))),
            Err(e) => {
                let (field, message) = yaml_error(&e);
                report.error(&at, &field, "", message);
            }
        }
    }
    items
}

/// serde_yaml's `path: message at line L column C`, split into the path and the rest.
fn yaml_error(e: &serde_yaml::Error) -> (String, String) {
    let text = e.to_string();
    match text.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && !path.contains(' ') => {
            (path.to_string(), rest.to_string())
        }
        _ => (".".to_string(), text),
    }
}
