//! deploy/example on either Istio resource, and the Istio install snippets: the TrafficExtension
//! variant carries the very config of the WasmPlugin and its CohortRollout names it, and the stat tags
//! Istio is told to extract are the ones the filter's metric names carry (as the tested local Envoy's).
//! Also: deploy/kustomization.yaml's `images:` sets the controller image of deployment.yaml in one place.

use k8s_openapi::api::apps::v1::Deployment;
use rollout::api::{CohortRollout, ConfigKind};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/example")
}

fn yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter(|doc| !doc.is_null())
        .collect()
}

fn one(path: PathBuf) -> Value {
    let mut docs = yaml(&path);
    assert_eq!(docs.len(), 1, "{}", path.display());
    docs.remove(0)
}

/// The example's CohortRollout as `kubectl apply -k deploy/example/trafficextension/` renders it:
/// the JSON patch operations of that kustomization (`move` only) applied to the app's.
fn rollout_on_extension() -> Value {
    let mut rollout = one(example().join("app/cohortrollout.yaml"));
    let kustomization = one(example().join("trafficextension/kustomization.yaml"));
    let patches = kustomization["patches"].as_array().unwrap();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0]["target"]["kind"], "CohortRollout");
    let ops: Vec<Value> = serde_yaml::from_str(patches[0]["patch"].as_str().unwrap()).unwrap();
    for op in ops {
        assert_eq!(op["op"], "move", "{op}");
        let from = op["from"].as_str().unwrap();
        let moved = rollout.pointer(from).unwrap().clone();
        let (parent, key) = from.rsplit_once('/').unwrap();
        rollout
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        let (parent, key) = op["path"].as_str().unwrap().rsplit_once('/').unwrap();
        let parent = rollout
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap();
        parent.insert(key.to_string(), moved);
    }
    rollout
}

#[test]
fn the_traffic_extension_variant_runs_the_same_filter_with_the_same_config() {
    let plugin = one(example().join("wasmplugin.yaml"));
    let extension = one(example().join("trafficextension/trafficextension.yaml"));
    assert_eq!(extension["kind"], "TrafficExtension");
    assert_eq!(extension["metadata"], plugin["metadata"]);
    assert_eq!(extension["spec"]["selector"], plugin["spec"]["selector"]);
    let wasm = &extension["spec"]["wasm"];
    for field in ["url", "pluginName", "failStrategy", "pluginConfig"] {
        assert_eq!(wasm[field], plugin["spec"][field], "wasm.{field}");
    }
    // Unset, as the WasmPlugin's UNSPECIFIED_PHASE: just before the router.
    assert!(extension["spec"].get("phase").is_none());
    assert_eq!(plugin["spec"]["phase"], "UNSPECIFIED_PHASE");
    assert!(wasm["pluginConfig"].get("rollouts").is_none());

    let rollout: CohortRollout = serde_json::from_value(rollout_on_extension()).unwrap();
    let named = rollout.spec.target.config_ref().unwrap();
    assert_eq!(
        (named.kind, named.name, named.namespace),
        (
            ConfigKind::TrafficExtension,
            extension["metadata"]["name"].as_str().unwrap(),
            extension["metadata"]["namespace"].as_str()
        )
    );
    rollout::plan::steps(&rollout.spec).unwrap();
}

/// The tag names of the local Envoy's `stats_tags`, which the Envoy tests run with.
fn local_envoy_tags() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy-configs/envoy.yaml");
    let envoy = one(path);
    let tags = envoy["stats_config"]["stats_tags"].as_array().unwrap();
    for tag in tags {
        // Istio builds the same regex from each extraStatTags entry.
        let name = tag["tag_name"].as_str().unwrap();
        assert_eq!(tag["regex"], format!("({name}=\\.=(.*?);\\.;)"));
    }
    tags.iter()
        .map(|t| t["tag_name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn istio_is_installed_with_the_stat_tags_of_the_sluice_metrics() {
    let tags = local_envoy_tags();
    assert_eq!(tags, ["sluice_rollout", "sluice_cohort"]);
    let operator = one(example().join("istio/istio-operator.yaml"));
    assert_eq!(operator["kind"], "IstioOperator");
    // The default profile has the ingress gateway (istio: ingressgateway) the example's filter selects.
    assert_eq!(operator["spec"]["profile"], "default");
    let values = one(example().join("istio/istiod-values.yaml"));
    for mesh in [&operator["spec"]["meshConfig"], &values["meshConfig"]] {
        assert_eq!(
            mesh["defaultConfig"]["extraStatTags"],
            serde_json::json!(tags)
        );
    }
}

#[test]
fn the_example_gateway_is_the_one_routed_through_and_runs_the_filter() {
    let gateway = one(example().join("app/gateway.yaml"));
    let service = one(example().join("app/virtualservice.yaml"));
    let plugin = one(example().join("wasmplugin.yaml"));
    let bound = format!(
        "{}/{}",
        gateway["metadata"]["namespace"].as_str().unwrap(),
        gateway["metadata"]["name"].as_str().unwrap()
    );
    assert_eq!(service["spec"]["gateways"], serde_json::json!([bound]));
    assert_eq!(
        gateway["spec"]["selector"],
        plugin["spec"]["selector"]["matchLabels"]
    );
    let hosts = &gateway["spec"]["servers"][0]["hosts"];
    assert_eq!(hosts, &service["spec"]["hosts"]);
}

/// Users set their registry in one place, deploy/kustomization.yaml's `images:`: its `name` must be
/// the image deployment.yaml names (else kustomize silently leaves the Deployment on ours), and its
/// defaults are that image (so `kubectl apply -k deploy` and the file run the same controller).
#[test]
fn kustomize_images_sets_the_controller_image_in_one_place() {
    let kustomization = &yaml(&example().join("../kustomization.yaml"))[0];
    let images = kustomization["images"].as_array().expect("no images:");
    assert_eq!(images.len(), 1, "{images:?}");
    let deployment: Deployment =
        serde_json::from_value(yaml(&example().join("../deployment.yaml")).remove(0)).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let image = pod.containers[0].image.clone().unwrap();
    let (repository, _tag) = image.rsplit_once(':').unwrap();
    assert_eq!(images[0]["name"], repository);
    assert_eq!(
        format!(
            "{}:{}",
            images[0]["newName"].as_str().unwrap(),
            images[0]["newTag"].as_str().unwrap()
        ),
        image
    );
}

/// The example app serves what the routing and the mirror expect: a Deployment per DestinationRule
/// subset, carrying its labels, and the Service on the port the mirror's canary cluster names.
#[test]
fn the_example_app_has_a_version_per_subset_on_the_mirrors_port() {
    let docs = yaml(&example().join("app/checkout.yaml"));
    let rule = &yaml(&example().join("app/destinationrule.yaml"))[0];
    let rollout = &yaml(&example().join("app/cohortrollout.yaml"))[0];
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    let cluster = rollout["spec"]["target"]["canaryCluster"].as_str().unwrap();
    let port = cluster.split('|').nth(1).unwrap();
    assert_eq!(service["spec"]["ports"][0]["port"].to_string(), port);
    assert_eq!(
        format!(
            "{}.shop.svc.cluster.local",
            service["metadata"]["name"].as_str().unwrap()
        ),
        rule["spec"]["host"].as_str().unwrap()
    );
    for subset in rule["spec"]["subsets"].as_array().unwrap() {
        let labels = subset["labels"].as_object().unwrap();
        let serving = docs.iter().filter(|d| d["kind"] == "Deployment").any(|d| {
            let pod = &d["spec"]["template"]["metadata"]["labels"];
            labels.iter().all(|(k, v)| &pod[k] == v)
                && service["spec"]["selector"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .all(|(k, v)| &pod[k] == v)
        });
        assert!(serving, "no Deployment serves subset {subset}");
    }
}

/// The example's mirror stage sends its copies to the gateway's Envoy cluster of the canary subset:
/// `outbound|<port>|<subset>|<host>` of the DestinationRule the VirtualService routes to.
#[test]
fn example_mirror_copies_go_to_the_canary_subsets_cluster() {
    let rollout: CohortRollout =
        serde_json::from_value(yaml(&example().join("app/cohortrollout.yaml")).remove(0)).unwrap();
    let rule = yaml(&example().join("app/destinationrule.yaml")).remove(0);
    let steps = rollout::plan::steps(&rollout.spec).unwrap();
    assert!(
        steps[0].mirror.is_some(),
        "the example starts with a mirror stage"
    );
    let cluster = rollout.spec.target.canary_cluster.as_deref().unwrap();
    let parts: Vec<&str> = cluster.split('|').collect();
    assert_eq!(parts.len(), 4, "{cluster}");
    assert_eq!(parts[0], "outbound");
    assert!(parts[1].parse::<u16>().is_ok(), "{cluster}");
    assert_eq!(parts[2], "canary");
    assert_eq!(parts[3], rule["spec"]["host"], "{cluster}");
}
