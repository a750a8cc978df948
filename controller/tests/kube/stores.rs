//! The Kubernetes stores against a mocked API server: the exact requests, and what each does with
//! the API server's answers.

use crate::fixtures::{cohort_rollout, mock_client, shared_plugin_config, timeout};
use crate::scenarios::Scenario;
use controller::kube::leadership::Leadership;
use controller::kube::plugin_store::PluginConfigStore;
use controller::kube::stores::{BothAlerts, CrdStatusStore, KubeEvents};
use rollout::api::{CohortRollout, CohortRolloutStatus, ConfigKind, Phase, Step};
use rollout::entry::{merge, rollout_entry};
use rollout::ports::{Alert, AlertKind, AlertSink, ConfigStore, StatusStore};
use rollout::Error;
use std::sync::Mutex;
use std::time::Duration;

/// This replica holds the Lease (for an hour).
fn leading() -> Leadership {
    Leadership::held_for(Duration::from_secs(3600))
}

fn rollout(name: &str) -> CohortRollout {
    serde_json::from_value(cohort_rollout(name, "shop.example.com", None)).unwrap()
}

#[tokio::test]
async fn wasm_plugin_store_loads_plugin_config_and_applies_only_that_field() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::WasmPluginLoadThenApplyOnlyPluginConfig);
    let store = PluginConfigStore::new(
        client,
        ConfigKind::WasmPlugin,
        "istio-system",
        "sluice",
        leading(),
    );
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.generation, 7);
    assert_eq!(loaded.cities.len(), 3);
    let spec = rollout("checkout").spec;
    let step = Step {
        regions: vec!["eu-south".into()],
        max_city_population: Some(100_000),
        percent: 10.0,
        pause_before: false,
        mirror: None,
    };
    let merged = merge(
        &loaded,
        rollout_entry("checkout", &spec.target, &step, Phase::Progressing),
    )
    .unwrap();
    store.store(&merged).await.unwrap();
    drop(store);
    timeout(verifier).await;
}

#[tokio::test]
async fn wasm_plugin_store_never_writes_what_the_filter_would_reject() {
    never_writes_what_the_filter_would_reject(ConfigKind::WasmPlugin).await;
}

#[tokio::test]
async fn traffic_extension_store_never_writes_what_the_filter_would_reject() {
    never_writes_what_the_filter_would_reject(ConfigKind::TrafficExtension).await;
}

/// A config with a 150% stage is refused before any request: the resource of `kind` is only read.
async fn never_writes_what_the_filter_would_reject(kind: ConfigKind) {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::ResourceLoadOnly(kind));
    let store = PluginConfigStore::new(client, kind, "istio-system", "sluice", leading());
    let mut config = store.load().await.unwrap();
    let spec = rollout("checkout").spec;
    let step = Step {
        regions: vec![],
        max_city_population: None,
        percent: 150.0,
        pause_before: false,
        mirror: None,
    };
    config.rollouts.push(rollout_entry(
        "checkout",
        &spec.target,
        &step,
        Phase::Progressing,
    ));
    let error = store.store(&config).await.unwrap_err();
    assert!(matches!(error, Error::Config(_)), "{error}");
    drop(store);
    timeout(verifier).await;
}

#[tokio::test]
async fn wasm_plugin_without_plugin_config_or_missing_is_a_clear_error() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::WasmPluginWithoutPluginConfigThenMissing);
    let store = PluginConfigStore::new(
        client,
        ConfigKind::WasmPlugin,
        "istio-system",
        "sluice",
        leading(),
    );
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains("WasmPlugin istio-system/sluice has no spec.pluginConfig"),
        "{error}"
    );
    let error = store.load().await.unwrap_err().to_string();
    assert!(
        error.contains("WasmPlugin istio-system/sluice not found"),
        "{error}"
    );
    // Storing without a successful load has no resourceVersion to apply against: refused.
    let config = cohort::parse(&serde_json::to_vec(&shared_plugin_config()).unwrap()).unwrap();
    let error = store.store(&config).await.unwrap_err().to_string();
    assert!(error.contains("store without a load"), "{error}");
    drop(store);
    timeout(verifier).await;
}

#[tokio::test]
async fn crd_status_store_reads_the_subresource_and_applies_the_whole_status() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::CrdStatusReadThenApplyWholeStatus);
    let store = CrdStatusStore::new(client, "shop", leading());
    let status = store.load("checkout").await.unwrap().unwrap();
    assert_eq!((status.phase, status.current_step), (Phase::Paused, 1));
    let next = CohortRolloutStatus {
        phase: Phase::Progressing,
        current_step: 2,
        at_gate: false,
        ..status
    };
    store.save("checkout", &next).await.unwrap();
    store.save("checkout", &next).await.unwrap();
    drop(store);
    timeout(verifier).await;
}

#[tokio::test]
async fn crd_status_store_never_overwrites_a_status_written_since_it_was_read() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::CrdStatusChangedSinceRead);
    let store = CrdStatusStore::new(client, "shop", leading());
    let status = store.load("checkout").await.unwrap().unwrap();
    let error = store.save("checkout", &status).await.unwrap_err();
    assert!(matches!(error, Error::Conflict(_)), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(
            "CohortRollout shop/checkout changed since its status was read (409 Conflict"
        ),
        "{text}"
    );
    drop(store);
    timeout(verifier).await;
}

fn alert(kind: AlertKind) -> Alert {
    Alert {
        text: "sluice: checkout ROLLED BACK at step 1: a critical check failed".into(),
        kind,
        rollout: "checkout".into(),
        namespace: "shop".into(),
        step: 1,
        percent: 50.0,
        regions: vec!["eu-south".into()],
        max_city_population: None,
        reason: "a critical check failed".into(),
        config_generation: 9,
    }
}

#[tokio::test]
async fn kube_events_posts_an_event_regarding_the_rollout() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::EventRegardingTheRollout);
    let events = KubeEvents::new(
        client,
        &rollout("checkout"),
        "sluice-controller-7d9f-abc",
        leading(),
    );
    events.send(&alert(AlertKind::Rollback)).await.unwrap();
    drop(events);
    timeout(verifier).await;
}

#[tokio::test]
async fn every_write_is_refused_once_the_lease_is_lost() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::ReadsOnlyOnceTheLeaseIsLost);
    let leadership = leading();
    let config = PluginConfigStore::new(
        client.clone(),
        ConfigKind::WasmPlugin,
        "istio-system",
        "sluice",
        leadership.clone(),
    );
    let status = CrdStatusStore::new(client.clone(), "shop", leadership.clone());
    let events = KubeEvents::new(
        client,
        &rollout("checkout"),
        "replica-a",
        leadership.clone(),
    );
    let document = config.load().await.unwrap();
    let recorded = status.load("checkout").await.unwrap().unwrap_or_default();
    leadership.lost();
    let refusals = [
        config.store(&document).await.unwrap_err(),
        status.save("checkout", &recorded).await.unwrap_err(),
        events.send(&alert(AlertKind::Step)).await.unwrap_err(),
    ];
    for refusal in refusals {
        let text = refusal.to_string();
        assert!(text.contains("not the leader: write refused"), "{text}");
    }
    drop((config, status, events));
    timeout(verifier).await;
}

/// Records every alert; fails when told to.
struct Recording {
    fail: bool,
    seen: Mutex<Vec<AlertKind>>,
}

impl AlertSink for Recording {
    async fn send(&self, alert: &Alert) -> rollout::Result<()> {
        self.seen.lock().unwrap().push(alert.kind);
        if self.fail {
            return Err(Error::Alert("webhook down".into()));
        }
        Ok(())
    }
}

#[tokio::test]
async fn both_alerts_tries_both_sinks_and_reports_a_failure() {
    let both = BothAlerts {
        first: Recording {
            fail: true,
            seen: Mutex::default(),
        },
        second: Recording {
            fail: false,
            seen: Mutex::default(),
        },
    };
    let error = both.send(&alert(AlertKind::Step)).await.unwrap_err();
    assert!(error.to_string().contains("webhook down"));
    assert_eq!(*both.first.seen.lock().unwrap(), [AlertKind::Step]);
    assert_eq!(*both.second.seen.lock().unwrap(), [AlertKind::Step]);

    let fine = BothAlerts {
        first: Recording {
            fail: false,
            seen: Mutex::default(),
        },
        second: Recording {
            fail: false,
            seen: Mutex::default(),
        },
    };
    fine.send(&alert(AlertKind::Promotion)).await.unwrap();
}
