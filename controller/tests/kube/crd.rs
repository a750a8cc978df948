//! The CohortRollout CRD: `sluice crd` prints the derived CRD, and its schema is structural (what the
//! API server requires of a v1 CRD: a type on every node, no `$ref`/`oneOf` soup, defaults and enum
//! values of the node's type), checked node by node.

use rollout::api::CohortRollout;
use serde_json::Value;

const TYPES: [&str; 6] = ["object", "array", "string", "integer", "number", "boolean"];
/// The JSONSchemaProps fields this schema may use; `$ref`, `definitions`, `oneOf`/`anyOf`/`allOf`/`not`
/// and the like are out (Kubernetes accepts some of them only in forms kube-derive never needs).
const ALLOWED: [&str; 16] = [
    "type",
    "format",
    "description",
    "title",
    "properties",
    "required",
    "items",
    "additionalProperties",
    "enum",
    "nullable",
    "default",
    "minimum",
    "maximum",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-validations",
];

fn of_type(value: &Value, type_: &str) -> bool {
    match type_ {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => false,
    }
}

/// The rules of a structural schema (Kubernetes' "Specifying a structural schema"), checked on every node.
fn check_structural(node: &Value, at: &str, problems: &mut Vec<String>) {
    let object = node.as_object().unwrap();
    for key in object.keys() {
        if !ALLOWED.contains(&key.as_str()) {
            problems.push(format!("{at}: `{key}` is not allowed"));
        }
    }
    let untyped = object.contains_key("x-kubernetes-preserve-unknown-fields")
        || object.contains_key("x-kubernetes-int-or-string");
    let type_ = object.get("type").and_then(Value::as_str).unwrap_or("");
    if !TYPES.contains(&type_) && !untyped {
        problems.push(format!("{at}: no valid type ({type_:?})"));
    }
    let nullable = object.get("nullable") == Some(&Value::Bool(true));
    for value in object
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !(of_type(value, type_) || value.is_null() && nullable) {
            problems.push(format!("{at}: enum value {value} is not a {type_}"));
        }
    }
    if let Some(default) = object.get("default") {
        if !of_type(default, type_) {
            problems.push(format!("{at}: default {default} is not a {type_}"));
        }
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        problems.push(format!("{at}: both properties and additionalProperties"));
    }
    let properties = object.get("properties").and_then(Value::as_object);
    for name in object
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !properties.is_some_and(|p| p.contains_key(name.as_str().unwrap_or(""))) {
            problems.push(format!("{at}: required {name} is not a property"));
        }
    }
    for (name, child) in properties.into_iter().flatten() {
        check_structural(child, &format!("{at}.{name}"), problems);
    }
    match (type_, object.get("items")) {
        ("array", Some(items)) if items.is_object() => {
            check_structural(items, &format!("{at}[]"), problems)
        }
        ("array", _) => problems.push(format!("{at}: an array needs one items schema")),
        (_, Some(_)) => problems.push(format!("{at}: items on a {type_}")),
        _ => {}
    }
    if let Some(additional) = object.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(additional, &format!("{at}{{}}"), problems);
    }
}

#[test]
fn crd_schema_is_structural() {
    let crd = serde_json::to_value(<CohortRollout as kube::CustomResourceExt>::crd()).unwrap();
    let versions = crd["spec"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let version = &versions[0];
    assert_eq!(
        (
            version["name"].as_str(),
            version["served"].as_bool(),
            version["storage"].as_bool()
        ),
        (Some("v1alpha1"), Some(true), Some(true))
    );
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let schema = &version["schema"]["openAPIV3Schema"];
    let mut problems = Vec::new();
    check_structural(schema, "openAPIV3Schema", &mut problems);
    assert!(
        problems.is_empty(),
        "not a structural schema:\n{}",
        problems.join("\n")
    );
    // At the root only apiVersion, kind, metadata (untouched), spec and status.
    let root: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert!(
        root.iter()
            .all(|k| ["apiVersion", "kind", "metadata", "spec", "status"].contains(&k.as_str())),
        "{root:?}"
    );
    assert_eq!(schema["type"], "object");
    // Printer columns point at fields of the schema.
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["jsonPath"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            ".status.phase",
            ".status.currentStep",
            ".status.stage.percent",
            ".metadata.creationTimestamp"
        ]
    );
    assert_eq!(
        schema["properties"]["status"]["properties"]["stage"]["properties"]["percent"]["type"],
        "number"
    );
}

#[test]
fn structural_check_flags_what_kubernetes_rejects() {
    let schema = serde_json::json!({
        "type": "object",
        "required": ["missing"],
        "properties": {
            "untyped": {"description": "no type"},
            "choice": {"type": "string", "oneOf": [{"enum": ["a"]}]},
            "level": {"type": "string", "enum": ["a", 1, null]},
            "count": {"type": "integer", "default": "ten"},
            "list": {"type": "array"},
            "ref": {"$ref": "#/definitions/X", "type": "object"},
        },
    });
    let mut problems = Vec::new();
    check_structural(&schema, "s", &mut problems);
    problems.sort();
    assert_eq!(
        problems,
        [
            "s.choice: `oneOf` is not allowed",
            "s.count: default \"ten\" is not a integer",
            "s.level: enum value 1 is not a string",
            "s.level: enum value null is not a string",
            "s.list: an array needs one items schema",
            "s.ref: `$ref` is not allowed",
            "s.untyped: no valid type (\"\")",
            "s: required \"missing\" is not a property",
        ]
    );
}

#[test]
fn crd_yaml_is_the_derived_crd() {
    let yaml = controller::kube::crd::crd_yaml().unwrap();
    assert!(yaml.starts_with("# Generated by `sluice crd`"));
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(crd, <CohortRollout as kube::CustomResourceExt>::crd());
}
