//! Fields the CohortRollout CRD does not have: `kubectl apply` refuses them (strict field validation,
//! its default), and a rollout file in local mode would silently lose them (`pauseBefor: true` is no
//! gate). Checked against the CRD the controller installs, so the two never disagree.

use super::report::{At, Report};
use kube::CustomResourceExt;
use rollout::api::CohortRollout;
use serde_json::Value as Schema;
use serde_yaml::Value;

/// Every field of `spec` the CRD's schema does not know, each once.
pub fn unknown_fields(document: &Value, at: &At, report: &mut Report) {
    let Ok(crd) = serde_json::to_value(CohortRollout::crd()) else {
        return;
    };
    let schema = crd.pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec");
    if let (Some(schema), Some(spec)) = (schema, document.get("spec")) {
        walk(spec, schema, "spec", at, report);
    }
}

fn walk(value: &Value, schema: &Schema, path: &str, at: &At, report: &mut Report) {
    match value {
        Value::Mapping(map) => {
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let open = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&true.into());
            let properties = schema.get("properties").and_then(Schema::as_object);
            for (key, value) in map {
                let Some(key) = key.as_str() else {
                    continue;
                };
                let field = format!("{path}.{key}");
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(schema), _) | (None, Some(schema)) => {
                        walk(value, schema, &field, at, report)
                    }
                    // A schema without properties (a free-form object) or one left open.
                    (None, None) if properties.is_none() || open => {}
                    (None, None) => report.error(
                        at,
                        &field,
                        "",
                        "unknown field: kubectl apply refuses it (strict decoding error), and a \
                         rollout file would lose it",
                    ),
                }
            }
        }
        Value::Sequence(items) => {
            if let Some(schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, schema, &format!("{path}[{i}]"), at, report);
                }
            }
        }
        _ => {}
    }
}
