//! Everything under deploy/: each YAML document parses into its typed form without losing a field
//! (the typed parse ignores an unknown field, so a misspelling is caught by comparing back), the kustomizations list
//! every manifest, deploy/crd.yaml is what `sluice crd` prints (its schema is checked in crd.rs),
//! RBAC grants exactly what the controller calls, the example's CohortRollout can be merged into
//! its WasmPlugin's pluginConfig, the TrafficExtension variant carries the same config, and the Istio
//! install snippets set the stat tags the filter's metric names use.

use controller::kube::crd::crd_yaml;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::DynamicObject;
use rollout::api::{CohortRollout, Phase};
use rollout::entry::{merge, rollout_entry};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The folders of kubectl-applied manifests, each with its kustomization.
fn manifest_dirs() -> [PathBuf; 4] {
    let example = deploy().join("example");
    [
        deploy(),
        example.join("app"),
        example.join("trafficextension"),
        example,
    ]
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// Every field of `original` that `typed` lost or changed (numbers compared as numbers).
fn lost_fields(original: &Value, typed: &Value, at: &str, lost: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(o), Value::Object(t)) => {
            for (key, value) in o {
                match t.get(key) {
                    Some(kept) => lost_fields(value, kept, &format!("{at}.{key}"), lost),
                    None => lost.push(format!("{at}.{key}: dropped (unknown or misspelled field)")),
                }
            }
        }
        (Value::Array(o), Value::Array(t)) if o.len() == t.len() => {
            for (i, (a, b)) in o.iter().zip(t).enumerate() {
                lost_fields(a, b, &format!("{at}[{i}]"), lost);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        _ if original == typed => {}
        _ => lost.push(format!("{at}: {original} became {typed}")),
    }
}

fn typed<T: DeserializeOwned + Serialize>(doc: &Value, at: &str) -> T {
    let value: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{at}: {e}"));
    let mut lost = Vec::new();
    lost_fields(doc, &serde_json::to_value(&value).unwrap(), at, &mut lost);
    assert!(lost.is_empty(), "{}", lost.join("\n"));
    value
}

#[test]
fn a_misspelled_field_is_caught() {
    let doc = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replica": 2, "selector": {}, "template": {}}});
    let typed =
        serde_json::to_value(serde_json::from_value::<Deployment>(doc.clone()).unwrap()).unwrap();
    let mut lost = Vec::new();
    lost_fields(&doc, &typed, "x", &mut lost);
    assert_eq!(
        lost,
        ["x.spec.replica: dropped (unknown or misspelled field)"]
    );
}

/// Every manifest under deploy/ (the example included), by kind.
fn manifests() -> BTreeMap<String, Vec<(String, Value)>> {
    let mut by_kind: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for dir in manifest_dirs() {
        for path in yaml_files(&dir) {
            if path.file_name().unwrap() == "kustomization.yaml" {
                continue;
            }
            for doc in documents(&path) {
                let kind = format!(
                    "{}/{}",
                    doc["apiVersion"].as_str().unwrap(),
                    doc["kind"].as_str().unwrap()
                );
                let at = format!("{} {}", path.display(), doc["metadata"]["name"]);
                by_kind.entry(kind).or_default().push((at, doc));
            }
        }
    }
    by_kind
}

#[test]
fn every_manifest_parses_into_its_type() {
    for (kind, docs) in manifests() {
        for (at, doc) in docs {
            match kind.as_str() {
                "v1/Namespace" => drop(typed::<Namespace>(&doc, &at)),
                "v1/ServiceAccount" => drop(typed::<ServiceAccount>(&doc, &at)),
                "v1/Service" => drop(typed::<Service>(&doc, &at)),
                "apps/v1/Deployment" => drop(typed::<Deployment>(&doc, &at)),
                "rbac.authorization.k8s.io/v1/ClusterRole" => drop(typed::<ClusterRole>(&doc, &at)),
                "rbac.authorization.k8s.io/v1/ClusterRoleBinding" => {
                    drop(typed::<ClusterRoleBinding>(&doc, &at))
                }
                "rbac.authorization.k8s.io/v1/Role" => drop(typed::<Role>(&doc, &at)),
                "rbac.authorization.k8s.io/v1/RoleBinding" => drop(typed::<RoleBinding>(&doc, &at)),
                "apiextensions.k8s.io/v1/CustomResourceDefinition" => {
                    drop(typed::<CustomResourceDefinition>(&doc, &at))
                }
                "sluice.dev/v1alpha1/CohortRollout" => {
                    let rollout: CohortRollout = typed(&doc, &at);
                    rollout::plan::steps(&rollout.spec).unwrap_or_else(|e| panic!("{at}: {e}"));
                }
                "extensions.istio.io/v1alpha1/WasmPlugin"
                | "extensions.istio.io/v1alpha1/TrafficExtension"
                | "networking.istio.io/v1/Gateway"
                | "networking.istio.io/v1/VirtualService"
                | "networking.istio.io/v1/DestinationRule" => {
                    drop(typed::<DynamicObject>(&doc, &at))
                }
                other => panic!("{at}: no test knows the kind {other}"),
            }
        }
    }
}

#[test]
fn kustomizations_list_every_manifest_of_their_folder() {
    for dir in manifest_dirs() {
        let kustomization = &documents(&dir.join("kustomization.yaml"))[0];
        let listed: Vec<&str> = kustomization["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        // A listed folder is another kustomization (the example's shared app).
        let (folders, mut files): (Vec<&str>, Vec<&str>) =
            listed.iter().partition(|r| !r.ends_with(".yaml"));
        for folder in folders {
            assert!(
                dir.join(folder).join("kustomization.yaml").is_file(),
                "{}: {folder}",
                dir.display()
            );
        }
        files.sort();
        let present: Vec<String> = yaml_files(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .filter(|name| name != "kustomization.yaml")
            .collect();
        assert_eq!(files, present, "{}", dir.display());
    }
}

#[test]
fn deploy_crd_yaml_is_what_sluice_crd_prints() {
    let path = deploy().join("crd.yaml");
    let generated = crd_yaml().unwrap();
    // SLUICE_UPDATE_CRD=1 cargo test -p sluice-controller --test kube manifests   rewrites it.
    if std::env::var_os("SLUICE_UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap();
    // Trailing newlines aside: `println!` of the output adds one.
    assert!(
        committed.trim_end() == generated.trim_end(),
        "deploy/crd.yaml differs from `sluice crd`: regenerate it with \
         `SLUICE_UPDATE_CRD=1 cargo test -p sluice-controller --test kube manifests`"
    );
}

fn one(kind: &str) -> Value {
    let mut docs = manifests().remove(kind).unwrap_or_default();
    assert_eq!(docs.len(), 1, "{kind}");
    docs.remove(0).1
}

/// The controller's own object of `kind` (the example app has a Service and Deployments too).
fn controllers(kind: &str) -> Value {
    let docs = manifests().remove(kind).unwrap_or_default();
    let label =
        |d: &Value| d["metadata"]["labels"]["app.kubernetes.io/name"] == "sluice-controller";
    let mut ours: Vec<Value> = docs.into_iter().map(|(_, d)| d).filter(label).collect();
    assert_eq!(ours.len(), 1, "{kind}");
    ours.remove(0)
}

#[test]
fn example_rollout_merges_into_its_wasm_plugin_config_at_every_step() {
    let plugin = one("extensions.istio.io/v1alpha1/WasmPlugin");
    let rollout: CohortRollout =
        serde_json::from_value(one("sluice.dev/v1alpha1/CohortRollout")).unwrap();
    let wasm = rollout.spec.target.wasm_plugin.as_ref().unwrap();
    assert_eq!(
        (Some(wasm.name.as_str()), wasm.namespace.as_deref()),
        (
            plugin["metadata"]["name"].as_str(),
            plugin["metadata"]["namespace"].as_str()
        )
    );
    let bytes = serde_json::to_vec(&plugin["spec"]["pluginConfig"]).unwrap();
    let config = cohort::parse(&bytes).unwrap();
    cohort::CompiledConfig::compile(&config).unwrap();
    assert!(
        !config.cities.is_empty(),
        "shared settings live in the WasmPlugin"
    );
    // A digest shipped in an example is a token anyone can look up: overrides stay off until the
    // operator adds their own.
    assert!(
        config.overrides.token_sha256.is_empty(),
        "{:?}",
        config.overrides.token_sha256
    );

    let name = rollout.metadata.name.as_deref().unwrap();
    let steps = rollout::plan::steps(&rollout.spec).unwrap();
    assert!(steps.len() >= 4, "{steps:?}");
    for step in &steps {
        for phase in [Phase::Progressing, Phase::RolledBack] {
            let merged = merge(
                &config,
                rollout_entry(name, &rollout.spec.target, step, phase),
            )
            .unwrap();
            cohort::CompiledConfig::compile(&merged).unwrap_or_else(|e| panic!("{step:?}: {e}"));
        }
    }
    // Every region the rings name is a region of the city table.
    let regions: Vec<&str> = config.cities.values().map(|c| c.region.as_str()).collect();
    for step in &steps {
        assert!(
            step.regions.iter().all(|r| regions.contains(&r.as_str())),
            "{step:?}"
        );
    }
}

#[test]
fn example_wasm_plugin_leaves_the_rollouts_to_the_controller() {
    // Re-applying it (to edit the shared settings) must not wipe the entries the controller wrote.
    let plugin = one("extensions.istio.io/v1alpha1/WasmPlugin");
    let plugin_config = &plugin["spec"]["pluginConfig"];
    assert!(
        plugin_config.get("rollouts").is_none(),
        "deploy/example/wasmplugin.yaml sets rollouts: {}",
        plugin_config["rollouts"]
    );
    let config = cohort::parse(&serde_json::to_vec(plugin_config).unwrap()).unwrap();
    assert!(config.rollouts.is_empty());
}

#[test]
fn example_routes_on_the_cohort_header_to_the_subsets() {
    let service = one("networking.istio.io/v1/VirtualService");
    let rule = one("networking.istio.io/v1/DestinationRule");
    let http = service["spec"]["http"].as_array().unwrap();
    assert_eq!(
        http[0]["match"][0]["headers"]["x-sluice-cohort"]["exact"],
        "canary"
    );
    assert_eq!(http[0]["route"][0]["destination"]["subset"], "canary");
    assert_eq!(http[1]["route"][0]["destination"]["subset"], "stable");
    let subsets: Vec<&str> = rule["spec"]["subsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(subsets, ["stable", "canary"]);
    assert_eq!(
        rule["spec"]["host"],
        http[0]["route"][0]["destination"]["host"]
    );
}

#[test]
fn controller_runs_two_replicas_with_least_privilege() {
    let deployment: Deployment = serde_json::from_value(controllers("apps/v1/Deployment")).unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("sluice-controller")
    );
    let container = &pod.containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("ghcr.io/sluice-dev/sluice:0.1.0")
    );
    let args = container.args.clone().unwrap();
    assert_eq!(
        args[..3],
        [
            "controller",
            "--prometheus",
            "http://prometheus.istio-system:9090"
        ]
    );
    for probe in [&container.liveness_probe, &container.readiness_probe] {
        assert_eq!(
            probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap()
                .path
                .as_deref(),
            Some("/healthz")
        );
    }
    let service: Service = serde_json::from_value(controllers("v1/Service")).unwrap();
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(
        container.ports.as_ref().unwrap()[0].container_port,
        port.port
    );

    // Exactly the calls the controller makes: its watches, the finalizer patch, status, the
    // WasmPlugin and TrafficExtension (read, watched, applied), Events, the CRD check (kube/{mod,finalizer,stores,crd}.rs).
    let rules = |doc: Value| -> Vec<String> {
        let role: ClusterRole = serde_json::from_value(doc).unwrap();
        role.rules
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{:?} {:?} {:?} {:?}",
                    r.api_groups.clone().unwrap(),
                    r.resources.clone().unwrap(),
                    r.resource_names.clone().unwrap_or_default(),
                    r.verbs
                )
            })
            .collect()
    };
    assert_eq!(
        rules(one("rbac.authorization.k8s.io/v1/ClusterRole")),
        [
            r#"["sluice.dev"] ["cohortrollouts"] [] ["list", "watch", "patch"]"#,
            r#"["sluice.dev"] ["cohortrollouts/status"] [] ["get", "patch"]"#,
            r#"["extensions.istio.io"] ["wasmplugins", "trafficextensions"] [] ["get", "list", "watch", "patch"]"#,
            r#"["events.k8s.io"] ["events"] [] ["create"]"#,
            r#"["apiextensions.k8s.io"] ["customresourcedefinitions"] ["cohortrollouts.sluice.dev"] ["get"]"#,
        ]
    );
    let role: Role = serde_json::from_value(one("rbac.authorization.k8s.io/v1/Role")).unwrap();
    assert_eq!(role.metadata.namespace.as_deref(), Some("sluice-system"));
    let verbs: Vec<Vec<String>> = role.rules.unwrap().into_iter().map(|r| r.verbs).collect();
    assert_eq!(verbs, [vec!["create"], vec!["get", "update"]]);
}
