//! The Kubernetes sinks against a mocked API server: the exact requests, and what each does with
//! the API server's answers.

use crate::fixtures::*;
use controller::kube::stores::{BothAlerts, CrdStatusStore, KubeEvents, WasmPluginStore};
use http::Method;
use rollout::api::{CohortRollout, CohortRolloutStatus, Phase, Step};
use rollout::entry::{merge, rollout_entry};
use rollout::ports::{Alert, AlertKind, AlertSink, ConfigStore, StatusStore};
use rollout::Error;
use serde_json::json;
use std::sync::Mutex;

fn rollout(name: &str) -> CohortRollout {
    serde_json::from_value(cohort_rollout(name, "shop.example.com", None)).unwrap()
}

#[tokio::test]
async fn wasm_plugin_store_loads_plugin_config_and_applies_only_that_field() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        reply(send, 200, &wasm_plugin("7", shared_plugin_config()));
        let (call, send) = expect_call(
            &mut server,
            Method::PATCH,
            &format!("{PLUGIN_URI}{APPLY_QUERY}"),
        )
        .await;
        let config = applied_plugin_config(&call, "7");
        reply(send, 200, &wasm_plugin("8", config.clone()));
        expect_no_more_calls(&mut server).await;
        config
    });

    let store = WasmPluginStore::new(client, "istio-system", "sluice");
    let loaded = store.load().await.unwrap();
    assert_eq!(loaded.generation, 7);
    assert_eq!(loaded.cities.len(), 3);
    let spec = rollout("checkout").spec;
    let step = Step {
        regions: vec!["eu-south".into()],
        max_city_population: Some(100_000),
        percent: 10.0,
        pause_before: false,
    };
    let merged = merge(
        &loaded,
        rollout_entry("checkout", &spec.target, &step, Phase::Progressing),
    )
    .unwrap();
    store.store(&merged).await.unwrap();
    drop(store);

    let applied = scenario.await.unwrap();
    // The whole document, shared settings untouched, the new entry in it, the generation raised.
    let mut expected = shared_plugin_config();
    expected["generation"] = json!(8);
    assert_eq!(applied["cities"], expected["cities"]);
    assert_eq!(applied["identity"], expected["identity"]);
    assert_eq!(applied["overrides"], expected["overrides"]);
    assert_eq!(applied["generation"], 8);
    assert_eq!(applied["rollouts"][0]["name"], "checkout");
    assert_eq!(
        applied["rollouts"][0]["stage"],
        json!({"regions": ["eu-south"], "max_city_population": 100000, "percent": 10.0})
    );
    assert_eq!(applied["rollouts"][0]["state"], "progressing");
}

#[tokio::test]
async fn wasm_plugin_store_never_writes_what_the_filter_would_reject() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        reply(send, 200, &wasm_plugin("7", shared_plugin_config()));
        expect_no_more_calls(&mut server).await;
    });
    let store = WasmPluginStore::new(client, "istio-system", "sluice");
    let mut config = store.load().await.unwrap();
    let spec = rollout("checkout").spec;
    let step = Step {
        regions: vec![],
        max_city_population: None,
        percent: 150.0,
        pause_before: false,
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
    scenario.await.unwrap();
}

#[tokio::test]
async fn wasm_plugin_without_plugin_config_or_missing_is_a_clear_error() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        let mut plugin = wasm_plugin("7", json!(null));
        plugin["spec"]
            .as_object_mut()
            .unwrap()
            .remove("pluginConfig");
        reply(send, 200, &plugin);
        let (_, send) = expect_call(&mut server, Method::GET, PLUGIN_URI).await;
        reply(
            send,
            404,
            &failure(
                404,
                "NotFound",
                "wasmplugins.extensions.istio.io \"sluice\" not found",
            ),
        );
    });
    let store = WasmPluginStore::new(client, "istio-system", "sluice");
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
    scenario.await.unwrap();
}

#[tokio::test]
async fn crd_status_store_reads_the_subresource_and_applies_the_whole_status() {
    let (client, mut server) = mock_client();
    let status_uri = format!("{}/status", rollout_uri("checkout"));
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, &status_uri).await;
        reply(
            send,
            200,
            &cohort_rollout(
                "checkout",
                "shop.example.com",
                Some(json!({"phase": "Paused", "currentStep": 1})),
            ),
        );
        let (call, send) = expect_call(
            &mut server,
            Method::PATCH,
            &format!("{status_uri}{APPLY_QUERY}"),
        )
        .await;
        assert_eq!(call.content_type.as_deref(), Some(APPLY));
        reply(
            send,
            200,
            &cohort_rollout(
                "checkout",
                "shop.example.com",
                Some(call.body["status"].clone()),
            ),
        );
        call.body
    });
    let store = CrdStatusStore::new(client, "shop");
    let status = store.load("checkout").await.unwrap().unwrap();
    assert_eq!((status.phase, status.current_step), (Phase::Paused, 1));
    let next = CohortRolloutStatus {
        phase: Phase::Progressing,
        current_step: 2,
        at_gate: false,
        ..status
    };
    store.save("checkout", &next).await.unwrap();
    let body = scenario.await.unwrap();
    assert_eq!(body["apiVersion"], "sluice.dev/v1alpha1");
    assert_eq!(body["kind"], "CohortRollout");
    assert_eq!(body["metadata"], json!({"name": "checkout"}));
    assert_eq!(body["status"]["phase"], "Progressing");
    assert_eq!(body["status"]["currentStep"], 2);
    // atGate false is left out, so server-side apply removes a previous `atGate: true`.
    assert!(body["status"].get("atGate").is_none());
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
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move { expect_event(&mut server).await });
    let events = KubeEvents::new(client, &rollout("checkout"), "sluice-controller-7d9f-abc");
    events.send(&alert(AlertKind::Rollback)).await.unwrap();
    let event = scenario.await.unwrap();
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "RolledBack");
    assert_eq!(event["action"], "Rollback");
    assert_eq!(
        event["note"],
        "sluice: checkout ROLLED BACK at step 1: a critical check failed"
    );
    assert_eq!(event["reportingController"], "sluice.dev/controller");
    assert_eq!(event["reportingInstance"], "sluice-controller-7d9f-abc");
    assert_eq!(event["metadata"]["namespace"], "shop");
    assert!(event["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("checkout."));
    assert!(event["eventTime"].is_string());
    let regarding = &event["regarding"];
    assert_eq!(
        (
            &regarding["apiVersion"],
            &regarding["kind"],
            &regarding["name"],
            &regarding["namespace"],
            &regarding["uid"]
        ),
        (
            &json!("sluice.dev/v1alpha1"),
            &json!("CohortRollout"),
            &json!("checkout"),
            &json!("shop"),
            &json!("uid-checkout")
        )
    );
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
