//! Leader election against a mocked API server: create, renew, respect another holder, take over an
//! expired or released Lease, and lose a race (409) without error.

use crate::fixtures::*;
use controller::kube::lease::{LeaderElector, LeaseSettings};
use http::Method;
use serde_json::{json, Value};
use std::time::Duration;

const LEASE_URI: &str =
    "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases/sluice-controller";

fn elector(client: kube::Client) -> LeaderElector {
    LeaderElector::new(client, LeaseSettings::new("sluice-system", "replica-a"))
}

fn lease(holder: &str, version: &str, transitions: i32) -> Value {
    lease_for(holder, version, transitions, 15)
}

fn lease_for(holder: &str, version: &str, transitions: i32, duration_secs: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "sluice-controller", "namespace": "sluice-system", "resourceVersion": version},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_secs,
            "acquireTime": "2025-01-01T00:00:00.000000Z",
            "renewTime": "2025-01-01T00:00:10.000000Z",
            "leaseTransitions": transitions,
        },
    })
}

#[tokio::test]
async fn creates_the_lease_when_there_is_none() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        reply(
            send,
            404,
            &failure(
                404,
                "NotFound",
                "leases.coordination.k8s.io \"sluice-controller\" not found",
            ),
        );
        let uri = "/apis/coordination.k8s.io/v1/namespaces/sluice-system/leases?";
        let (call, send) = expect_call(&mut server, Method::POST, uri).await;
        let mut written = call.body.clone();
        written["metadata"]["resourceVersion"] = json!("1");
        reply(send, 201, &written);
        call.body
    });
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    let body = scenario.await.unwrap();
    assert_eq!(body["metadata"]["name"], "sluice-controller");
    assert_eq!(body["spec"]["holderIdentity"], "replica-a");
    assert_eq!(body["spec"]["leaseDurationSeconds"], 15);
    assert_eq!(body["spec"]["leaseTransitions"], 0);
    assert!(body["spec"]["renewTime"].is_string() && body["spec"]["acquireTime"].is_string());
}

#[tokio::test]
async fn renews_its_own_lease_against_the_version_it_read() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        reply(send, 200, &lease("replica-a", "5", 2));
        let (call, send) = expect_call(&mut server, Method::PUT, &format!("{LEASE_URI}?")).await;
        let mut written = call.body.clone();
        written["metadata"]["resourceVersion"] = json!("6");
        reply(send, 200, &written);
        call.body
    });
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    let body = scenario.await.unwrap();
    assert_eq!(
        body["metadata"]["resourceVersion"], "5",
        "the update is conditional on what was read"
    );
    assert_eq!(body["spec"]["holderIdentity"], "replica-a");
    assert_eq!(
        body["spec"]["leaseTransitions"], 2,
        "a renewal is no transition"
    );
    assert_eq!(body["spec"]["acquireTime"], "2025-01-01T00:00:00.000000Z");
    assert_ne!(body["spec"]["renewTime"], "2025-01-01T00:00:10.000000Z");
}

#[tokio::test]
async fn waits_while_another_replica_renews_and_takes_over_once_it_stops() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        // Held by replica-b and renewed (a new resourceVersion each time): not ours to take.
        for version in ["5", "6"] {
            let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
            reply(send, 200, &lease_for("replica-b", version, 4, 1));
        }
        // Unchanged for longer than its 1 s duration (by our clock): replica-b is gone, take over...
        let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        reply(send, 200, &lease_for("replica-b", "6", 4, 1));
        let (call, send) = expect_call(&mut server, Method::PUT, &format!("{LEASE_URI}?")).await;
        // ...but a third replica got there first.
        reply(
            send,
            409,
            &failure(409, "Conflict", "the object has been modified"),
        );
        call.body
    });
    let mut elector = elector(client);
    assert!(!elector.try_acquire_or_renew().await.unwrap());
    // Longer than the duration since the first read, but the Lease changed in between: still held.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!elector.try_acquire_or_renew().await.unwrap());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(
        !elector.try_acquire_or_renew().await.unwrap(),
        "a lost race is not leadership, and no error"
    );
    let body = scenario.await.unwrap();
    assert_eq!(body["spec"]["holderIdentity"], "replica-a");
    assert_eq!(body["spec"]["leaseTransitions"], 5);
    assert_eq!(body["metadata"]["resourceVersion"], "6");
}

#[tokio::test]
async fn takes_a_released_lease_at_once() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        reply(send, 200, &lease("", "9", 1));
        let (call, send) = expect_call(&mut server, Method::PUT, &format!("{LEASE_URI}?")).await;
        reply(send, 200, &call.body);
        call.body
    });
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    let body = scenario.await.unwrap();
    assert_eq!(
        (
            body["spec"]["holderIdentity"].as_str(),
            body["spec"]["leaseTransitions"].as_i64()
        ),
        (Some("replica-a"), Some(2))
    );
}

#[tokio::test]
async fn the_holder_steps_down_when_renewals_hang_past_the_deadline() {
    let (client, mut server) = mock_client();
    let scenario = tokio::spawn(async move {
        let (_, send) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        reply(send, 200, &lease("replica-a", "5", 0));
        let (call, send) = expect_call(&mut server, Method::PUT, &format!("{LEASE_URI}?")).await;
        reply(send, 200, &call.body);
        // The API server stops answering.
        let (_, unanswered) = expect_call(&mut server, Method::GET, LEASE_URI).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        drop(unanswered);
    });
    let settings = LeaseSettings {
        retry_period: Duration::from_millis(50),
        renew_deadline: Duration::from_millis(300),
        ..LeaseSettings::new("sluice-system", "replica-a")
    };
    let mut elector = LeaderElector::new(client, settings);
    let started = std::time::Instant::now();
    elector.hold().await;
    let held = started.elapsed();
    assert!(
        held >= Duration::from_millis(300) && held < Duration::from_secs(5),
        "{held:?}"
    );
    drop(elector);
    scenario.abort();
}
