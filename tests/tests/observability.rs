#![cfg(test)]
//! deploy/observability/ against a real Prometheus scraping a real Envoy with the built .wasm (and the
//! controller's metrics as it exports them): every PromQL expression of the Grafana dashboard and of
//! the PrometheusRule is valid and returns one series per rollout or cohort as its panel or alert
//! means; the alerts fire on the situations they name and not otherwise; `promtool check rules` passes.

mod common;

#[path = "observability/support.rs"]
mod support;

use common::prometheus::Prometheus;
use common::{repo_root, Stack};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{
    alerting_rules, api, controller_metrics, load_rules, now, observability, plain_rules_file,
    query, referenced_labels, serve_target, waiting,
};

const ROLLOUT: &str = "shop";
const TRIPPED: &str = "sluice_guardrail_tripped{sluice_rollout=\"shop\"}";

/// Rollout `shop` at 50% of its users, its mirror copying half of stable's requests to the canary.
fn config(generation: u64) -> Value {
    json!({"generation": generation, "rollouts": [{"name": ROLLOUT, "stage": {
        "percent": 50, "mirror": {"percent": 50, "cluster": "canary"}}}]})
}

#[test]
fn promtool_accepts_the_rules() {
    let dir = std::env::temp_dir().join(format!("sluice-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(plain_rules_file(&dir))
        .output()
        .expect("promtool is installed with prometheus (scripts/install-prometheus.sh)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success(), "{text}");
}

/// Every target of the dashboard, with Grafana's variables resolved: (panel, panel type, expr, legend).
fn dashboard_targets() -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(observability().join("sluice-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(variables, ["datasource", "rollout"]);
    // A collapsed row holds its panels in its own `panels`.
    let mut panels: Vec<&Value> = Vec::new();
    let mut rows = vec![&dashboard["panels"]];
    while let Some(row) = rows.pop() {
        for panel in row.as_array().into_iter().flatten() {
            panels.push(panel);
            rows.push(&panel["panels"]);
        }
    }
    let mut targets = Vec::new();
    for panel in panels {
        let title = panel["title"].as_str().unwrap().to_string();
        for target in panel["targets"].as_array().into_iter().flatten() {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"]
                .as_str()
                .unwrap()
                .replace("$rollout", ROLLOUT)
                .replace("$__rate_interval", "30s")
                .replace("$__range", "5m");
            assert!(
                !expr.contains('$'),
                "{title}: an unknown variable in {expr}"
            );
            let legend = target["legendFormat"].as_str().unwrap().to_string();
            let kind = panel["type"].as_str().unwrap().to_string();
            targets.push((title.clone(), kind, expr, legend));
        }
    }
    // Nothing with a query is left out, wherever it sits in the panels' JSON.
    let text = dashboard["panels"].to_string();
    assert_eq!(text.matches("\"expr\":").count(), targets.len());
    targets
}

#[test]
fn the_kustomization_lists_every_file_of_the_folder() {
    let dir = observability();
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let listed: BTreeSet<String> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter(|item| !item.contains(':'))
        .map(str::to_string)
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present);
}

/// Every `sluice_controller_*` series the dashboard and the rules read is one the controller's own
/// metrics type exports (the served text is its output, checked by the controller's tests; the live
/// test below shows the labels join as well).
#[test]
fn the_controller_exports_every_metric_the_dashboard_and_rules_read() {
    let exported: BTreeSet<String> = controller_metrics(false)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let mut read = BTreeSet::new();
    for file in ["sluice-dashboard.json", "prometheusrule.yaml"] {
        let text = std::fs::read_to_string(observability().join(file)).unwrap();
        for part in text.split("sluice_controller_").skip(1) {
            let end = part
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(part.len());
            read.insert(format!("sluice_controller_{}", &part[..end]));
        }
    }
    println!("read: {read:?}\nexported: {exported:?}");
    assert!(read.len() > 5, "{read:?}");
    let missing: Vec<&String> = read.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the rules read what the controller does not export: {missing:?}"
    );
}

/// The PodMonitor scrapes the proxies the example's WasmPlugin (or TrafficExtension) runs the filter
/// in: the sluice_* series every panel and alert reads come from nowhere else.
#[test]
fn the_pod_monitor_selects_the_proxies_that_run_the_filter() {
    let yaml = |path: &str| -> serde_yaml::Value {
        let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let monitor = yaml("deploy/observability/podmonitor.yaml");
    assert_eq!(monitor["kind"].as_str(), Some("PodMonitor"));
    for path in [
        "deploy/example/wasmplugin.yaml",
        "deploy/example/trafficextension/trafficextension.yaml",
    ] {
        let plugin = yaml(path);
        assert_eq!(
            monitor["spec"]["selector"], plugin["spec"]["selector"],
            "{path}"
        );
        // In Istio's root namespace a plugin applies to matching pods of every namespace.
        assert_eq!(
            plugin["metadata"]["namespace"].as_str(),
            Some("istio-system")
        );
        assert_eq!(
            monitor["spec"]["namespaceSelector"]["any"].as_bool(),
            Some(true)
        );
    }
}

type Labels = BTreeMap<String, String>;

/// Per alerting rule, the label sets its active (pending or firing) alerts got from its expression:
/// without `alertname` and the rule's own labels (severity).
fn active_alerts(prometheus: &Prometheus) -> BTreeMap<String, Vec<Labels>> {
    alerting_rules(prometheus)
        .iter()
        .map(|rule| {
            let mut alerts: Vec<Labels> = rule["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    let mut labels: Labels = serde_json::from_value(a["labels"].clone()).unwrap();
                    labels.retain(|k, _| k != "alertname" && rule["labels"].get(k).is_none());
                    labels
                })
                .collect();
            alerts.sort();
            (rule["name"].as_str().unwrap().to_string(), alerts)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Each rule is healthy, its annotations render, and its expression asked directly returns one
/// series per label set its annotations name.
fn check_rules(prometheus: &Prometheus, expected: &BTreeMap<String, Vec<Labels>>, at: f64) {
    for rule in alerting_rules(prometheus) {
        let name = rule["name"].as_str().unwrap();
        assert_eq!(rule["health"], "ok", "{name}: {}", rule["lastError"]);
        let severity = rule["labels"]["severity"].as_str();
        assert!(matches!(severity, Some("warning" | "critical")), "{name}");
        for key in ["summary", "description"] {
            assert!(rule["annotations"][key].is_string(), "{name}: {key}");
        }
        for alert in rule["alerts"].as_array().unwrap() {
            let text = alert["annotations"].to_string();
            assert!(
                !text.contains("error expanding") && !text.contains("<no value>"),
                "{name}: {text}"
            );
        }
        let named = referenced_labels(&rule["annotations"].to_string(), "$labels.", "");
        let series = query(prometheus, rule["query"].as_str().unwrap(), at);
        assert_eq!(series.len(), expected[name].len(), "{name}: {series:?}");
        for (labels, _) in &series {
            let keys: BTreeSet<String> = labels.keys().cloned().collect();
            assert_eq!(keys, named, "{name}");
        }
    }
}

/// Every target: valid, data, one series per label its legend names (a stat: one series); returns
/// each panel's series by legend.
fn check_dashboard(prometheus: &Prometheus, at: f64) -> BTreeMap<String, Vec<(String, f64)>> {
    // The rollout variable (`label_values(METRIC, LABEL)`) lists the rollouts the proxies count.
    let text = std::fs::read_to_string(observability().join("sluice-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let definition = dashboard["templating"]["list"][1]["query"]["query"]
        .as_str()
        .unwrap();
    let args = definition.strip_prefix("label_values(").unwrap();
    let (metric, label) = args.strip_suffix(')').unwrap().split_once(", ").unwrap();
    let values = api(
        prometheus,
        &format!("/api/v1/label/{label}/values?match[]={metric}"),
    );
    assert_eq!(values["data"], json!([ROLLOUT]), "{definition}");
    let mut panels: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for (title, kind, expr, legend) in dashboard_targets() {
        let series = query(prometheus, &expr, at);
        let named = referenced_labels(&legend, "{{", "}}");
        assert!(
            !series.is_empty(),
            "{title} / {legend}: no data from {expr}"
        );
        if kind == "stat" {
            assert_eq!(series.len(), 1, "{title} / {legend}: {series:?}");
        }
        for (labels, value) in series {
            let keys: BTreeSet<String> = labels.keys().cloned().collect();
            assert_eq!(keys, named, "{title} / {legend}: {expr}");
            let name = labels.values().next().cloned().unwrap_or(legend.clone());
            panels.entry(title.clone()).or_default().push((name, value));
        }
    }
    panels
}

#[test]
fn every_dashboard_query_and_alert_works_on_real_metrics() {
    let started = Instant::now();
    let stack = Stack::start(&config(2));
    let target = serve_target(stack.admin);
    let prometheus = Prometheus::start(&stack.dir, target.port);
    load_rules(&prometheus, &stack.dir, &plain_rules_file(&stack.dir));
    prometheus.wait_scraping();

    // Users on both versions, copies to the canary; then the canary fails and the guardrail trips.
    let send = |from: usize| {
        for i in from..from + 60 {
            stack.send(&[("x-user-id", format!("user-{i}").as_bytes())]);
        }
    };
    send(0);
    stack.control_upstream(stack.canary, &json!({"error_rate": 1.0}));
    stack.eventually(Duration::from_secs(10), "the guardrail to trip", || {
        send(1000);
        stack.metric(TRIPPED) == Some(1.0)
    });
    // A stale push, refused by the proxy.
    stack.update_config(&config(1).to_string());

    // The controller's metrics: `shop` held at step 1 for an hour, `search` rolled back, its push
    // failing, rounds failing.
    let rollout = |name| {
        labels(&[
            ("namespace", "shop"),
            ("rollout", name),
            ("sluice_rollout", name),
        ])
    };
    let instance = format!("127.0.0.1:{}", target.port);
    let expected: BTreeMap<String, Vec<Labels>> = [
        ("SluiceRolloutRolledBack", vec![rollout("search")]),
        (
            "SluiceGuardrailTripped",
            vec![labels(&[("sluice_rollout", ROLLOUT)])],
        ),
        ("SluiceRolloutHolding", vec![rollout("shop")]),
        ("SluiceDecisionNotApplied", vec![rollout("search")]),
        ("SluiceControllerNotLeading", vec![]),
        ("SluiceControllerSeveralLeaders", vec![]),
        ("SluiceReconcileFailing", vec![labels(&[])]),
        (
            "SluiceConfigRejected",
            vec![labels(&[("instance", &instance)])],
        ),
    ]
    .into_iter()
    .map(|(name, alerts)| (name.to_string(), alerts))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while active_alerts(&prometheus) != expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(active_alerts(&prometheus), expected);
    let at = now();
    check_rules(&prometheus, &expected, at);

    let panels = check_dashboard(&prometheus, at);
    println!("dashboard: {panels:?}");
    let of = |title: &str, name: &str| -> f64 {
        let series = &panels[title];
        let found = series.iter().find(|(n, _)| n == name);
        found
            .unwrap_or_else(|| panic!("{title} / {name}: {series:?}"))
            .1
    };
    assert_eq!(panels["Phase"], [("Progressing".to_string(), 1.0)]);
    assert_eq!((of("Step", "step"), of("Step", "of")), (1.0, 4.0));
    assert_eq!(of("Exposure (stage)", "stage percent"), 50.0);
    assert_eq!(of("Config applied", "applied"), 1.0);
    assert_eq!(of("Guardrail now", "proxies tripped now"), 1.0);
    let share = of("Canary share of requests", "canary share");
    assert!(share > 0.0 && share < 100.0, "{share}");
    let cohorts: BTreeSet<&str> = panels["Success rate by cohort"]
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(cohorts, BTreeSet::from(["canary", "mirror", "stable"]));
    assert_eq!(of("Success rate by cohort", "stable"), 100.0);
    assert!(of("Success rate by cohort", "mirror") < 100.0);

    // A deposed replica alone: its stale rollout state raises nothing; "not leading" fires.
    target
        .deposed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    waiting(
        "the leader gauge to read 0",
        Duration::from_secs(10),
        || {
            let leader = query(&prometheus, "sluice_controller_leader", now());
            leader.first().is_some_and(|(_, v)| *v == 0.0)
        },
    );
    let rules = alerting_rules(&prometheus);
    let expr = |name: &str| {
        let rule = rules.iter().find(|r| r["name"] == name).unwrap();
        rule["query"].as_str().unwrap().to_string()
    };
    let at = now();
    assert_eq!(
        query(&prometheus, &expr("SluiceControllerNotLeading"), at).len(),
        1
    );
    for name in [
        "SluiceRolloutRolledBack",
        "SluiceRolloutHolding",
        "SluiceDecisionNotApplied",
    ] {
        assert_eq!(query(&prometheus, &expr(name), at), [], "{name}");
    }
    println!("observability test took {:.1?}", started.elapsed());
}
