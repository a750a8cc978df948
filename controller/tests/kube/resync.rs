//! Editing the shared settings never drops live entries: the controller watches the WasmPlugins and
//! TrafficExtensions its rollouts target and re-merges an entry that went missing (or stale) within a second of the change.

use crate::fixtures::{
    cohort_rollout, mock_client, plugin_entry, run_controller_through, shared_plugin_config,
    wasm_plugin,
};
use crate::scenarios::Scenario;
use controller::kube::config_entries::ConfigEntries;
use controller::kube::resync::{rollouts_to_wake, rollouts_to_wake_unless_own, OwnWrites};
use rollout::api::{CohortRollout, ConfigKind};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

/// The pluginConfig of deploy/example/wasmplugin.yaml, as a person applies it.
fn example_plugin_config() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/example/wasmplugin.yaml");
    let plugin: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plugin["spec"]["pluginConfig"].clone()
}

#[tokio::test]
async fn a_person_reapplying_the_wasm_plugin_gets_the_entries_back_within_a_second() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::WasmPluginReappliedByAPerson(
        example_plugin_config(),
    ));
    run_controller_through(client, verifier).await;
}

#[tokio::test]
async fn a_person_reapplying_the_traffic_extension_gets_the_entries_back_within_a_second() {
    let (client, api_server) = mock_client();
    // The example TrafficExtension's wasm.pluginConfig, as a person applies it.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/example/trafficextension/trafficextension.yaml");
    let extension: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let example = extension["spec"]["wasm"]["pluginConfig"].clone();
    let verifier = api_server.run(Scenario::TrafficExtensionReappliedByAPerson(example));
    run_controller_through(client, verifier).await;
}

/// checkout's status at step 0 (progressing), recorded at config generation 8.
fn at_step_0(name: &str, authority: &str) -> Arc<CohortRollout> {
    let status = json!({
        "phase": "Progressing", "currentStep": 0, "configGeneration": 8,
        "stage": {"regions": ["eu-south"], "maxCityPopulation": 100000, "percent": 10.0},
    });
    Arc::new(serde_json::from_value(cohort_rollout(name, authority, Some(status))).unwrap())
}

fn entry_at_step_0(name: &str, authority: &str) -> Value {
    let stage = json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0});
    plugin_entry(name, authority, stage, "progressing")
}

fn plugin(generation: u64, entries: Value) -> ConfigEntries {
    let mut config = shared_plugin_config();
    config["generation"] = json!(generation);
    config["rollouts"] = entries;
    serde_json::from_value(wasm_plugin("30", config)).unwrap()
}

fn woken(plugin: &ConfigEntries, rollouts: &[Arc<CohortRollout>]) -> Vec<String> {
    rollouts_to_wake(ConfigKind::WasmPlugin, plugin, rollouts)
        .into_iter()
        .map(|r| r.name)
        .collect()
}

#[test]
fn a_wasm_plugin_change_wakes_the_rollouts_whose_entry_it_dropped_or_changed() {
    let checkout = at_step_0("checkout", "shop.example.com");
    let search = at_step_0("search", "search.example.com");
    let cart = at_step_0("cart", "cart.example.com");
    let mut elsewhere = cohort_rollout("billing", "billing.example.com", None);
    elsewhere["spec"]["target"]["wasmPlugin"]["name"] = json!("other");
    let elsewhere: Arc<CohortRollout> = Arc::new(serde_json::from_value(elsewhere).unwrap());
    let new: Arc<CohortRollout> =
        Arc::new(serde_json::from_value(cohort_rollout("new", "new.example.com", None)).unwrap());
    let rollouts = [checkout, search, cart, elsewhere, new];

    // checkout as recorded; search dropped (a person re-applied without it); cart edited by hand;
    // billing targets another WasmPlugin; new has not pushed yet.
    let mut edited = entry_at_step_0("cart", "cart.example.com");
    edited["stage"]["percent"] = json!(90.0);
    let entries = json!([entry_at_step_0("checkout", "shop.example.com"), edited]);
    assert_eq!(
        woken(&plugin(8, entries.clone()), &rollouts),
        ["search", "cart", "new"]
    );

    // Every entry as recorded, but the generation below the recorded 8: all on it but billing.
    let all = json!([
        entry_at_step_0("checkout", "shop.example.com"),
        entry_at_step_0("search", "search.example.com"),
        entry_at_step_0("cart", "cart.example.com"),
    ]);
    assert_eq!(
        woken(&plugin(1, all.clone()), &rollouts),
        ["checkout", "search", "cart", "new"]
    );
    // The controller's own write (all as recorded, generation 9): nobody but the one still to start.
    assert_eq!(woken(&plugin(9, all), &rollouts), ["new"]);
    // A document that does not parse wakes every rollout on it: their rounds report it.
    let mut config = shared_plugin_config();
    config["generation"] = json!("nine");
    let broken: ConfigEntries = serde_json::from_value(wasm_plugin("30", config)).unwrap();
    assert_eq!(
        woken(&broken, &rollouts),
        ["checkout", "search", "cart", "new"]
    );
}

#[test]
fn the_controllers_own_write_wakes_nobody_before_the_cache_has_the_statuses_it_carries() {
    // The cache still has checkout at step 0; the controller just pushed it at step 1 (generation
    // 9, resourceVersion "30"), and saved that status, which the cache has not heard of yet.
    let checkout = at_step_0("checkout", "shop.example.com");
    let mut step_1 = entry_at_step_0("checkout", "shop.example.com");
    step_1["stage"]["percent"] = json!(20.0);
    let pushed = plugin(9, json!([step_1]));
    let own = OwnWrites::default();
    let wake = |own: &OwnWrites| {
        let rollouts = [checkout.clone()];
        rollouts_to_wake_unless_own(ConfigKind::WasmPlugin, &pushed, &rollouts, own).len()
    };
    assert_eq!(
        wake(&own),
        1,
        "without knowing its own writes, it wakes checkout"
    );
    let sluice = || "istio-system/sluice".to_string();
    // The watch's event comes before the apply's answer, or after it.
    let push = own.pushing(ConfigKind::WasmPlugin, sluice(), 9);
    assert_eq!(wake(&own), 0);
    push.landed("30".into());
    assert_eq!(wake(&own), 0);
    // Another write (a person's: another resourceVersion, no push of its generation under way) is
    // checked as before.
    own.pushing(ConfigKind::WasmPlugin, sluice(), 10)
        .landed("31".into());
    assert_eq!(wake(&own), 1);
    // A push that never landed (failed, or its round cut off mid-write) is no longer under way: a
    // later write of the same generation is checked as before.
    drop(own.pushing(ConfigKind::WasmPlugin, sluice(), 9));
    assert_eq!(wake(&own), 1);
}

/// The TrafficExtension `istio-system/sluice` (Istio 1.30+) carrying `entries`.
fn extension(generation: u64, entries: Value) -> ConfigEntries {
    let mut config = shared_plugin_config();
    config["generation"] = json!(generation);
    config["rollouts"] = entries;
    serde_json::from_value(crate::traffic_extension::traffic_extension("30", config)).unwrap()
}

/// `rollout` moved from the WasmPlugin to the TrafficExtension of the same name.
fn on_extension(rollout: &CohortRollout) -> Arc<CohortRollout> {
    let mut moved = rollout.clone();
    moved.spec.target.traffic_extension = moved.spec.target.wasm_plugin.take();
    Arc::new(moved)
}

#[test]
fn a_traffic_extension_change_wakes_only_the_rollouts_on_that_traffic_extension() {
    let checkout = on_extension(&at_step_0("checkout", "shop.example.com"));
    let search = on_extension(&at_step_0("search", "search.example.com"));
    // cart targets the WasmPlugin of the same name: another resource.
    let cart = at_step_0("cart", "cart.example.com");
    let rollouts = [checkout, search, cart];
    let dropped_search = json!([
        entry_at_step_0("checkout", "shop.example.com"),
        entry_at_step_0("cart", "cart.example.com"),
    ]);
    let woken = |kind, object: &ConfigEntries| -> Vec<String> {
        rollouts_to_wake(kind, object, &rollouts)
            .into_iter()
            .map(|r| r.name)
            .collect()
    };
    let changed = extension(8, dropped_search.clone());
    assert_eq!(woken(ConfigKind::TrafficExtension, &changed), ["search"]);
    // The config is read from spec.wasm.pluginConfig: a broken one there wakes every rollout on it.
    let mut config = shared_plugin_config();
    config["generation"] = json!("eight");
    config["rollouts"] = dropped_search.clone();
    let broken = crate::traffic_extension::traffic_extension("30", config);
    let broken: ConfigEntries = serde_json::from_value(broken).unwrap();
    assert_eq!(
        woken(ConfigKind::TrafficExtension, &broken),
        ["checkout", "search"]
    );
    // The WasmPlugin of the same name without cart's entry wakes cart alone; without search's, nobody.
    let dropped_cart = json!([
        entry_at_step_0("checkout", "shop.example.com"),
        entry_at_step_0("search", "search.example.com"),
    ]);
    assert_eq!(
        woken(ConfigKind::WasmPlugin, &plugin(8, dropped_cart)),
        ["cart"]
    );
    assert!(woken(ConfigKind::WasmPlugin, &plugin(8, dropped_search)).is_empty());
}
