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
use std::sync::atomic::Ordering;
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
    let mut targets = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
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

/// The controller metrics the dashboard and the rules read (as `controller_metrics` serves them) are
/// the controller's own: each family and each label is registered in controller/src.
#[test]
fn the_controller_exports_every_metric_the_dashboard_and_rules_read() {
    let mut sources = String::new();
    let mut dirs = vec![repo_root().join("controller/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                sources += &std::fs::read_to_string(path).unwrap();
            }
        }
    }
    let mut missing = BTreeSet::new();
    for line in controller_metrics(true, 0).lines() {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = name.strip_prefix("sluice_controller_").unwrap();
        let family = family.strip_suffix("_total").unwrap_or(family);
        if !sources.contains(&format!("\"{family}\"")) {
            missing.insert(name.to_string());
        }
        let labels = line.split_once('{').map_or("", |(_, rest)| rest);
        for label in labels.split(',').filter_map(|l| l.split_once('=')) {
            if !sources.contains(&format!("pub {}: String", label.0)) {
                missing.insert(format!("{name}: label {}", label.0));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboard or the rules read what the controller does not export: {missing:#?}"
    );
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
    target.leader.store(false, Ordering::SeqCst);
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
