//! Leader election against a mocked API server: create, renew, respect another holder, take over an
//! expired or released Lease, and lose a race (409) without error.

use crate::fixtures::{mock_client, timeout};
use crate::scenarios::Scenario;
use controller::kube::lease::{LeaderElector, LeaseSettings};
use std::time::Duration;

fn elector(client: kube::Client) -> LeaderElector {
    LeaderElector::new(client, LeaseSettings::new("sluice-system", "replica-a"))
}

#[tokio::test]
async fn creates_the_lease_when_there_is_none() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::LeaseCreatedWhenNone);
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    timeout(verifier).await;
}

#[tokio::test]
async fn renews_its_own_lease_against_the_version_it_read() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::LeaseRenewedAgainstTheVersionRead);
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    timeout(verifier).await;
}

#[tokio::test]
async fn waits_while_another_replica_renews_and_takes_over_once_it_stops() {
    let (client, api_server) = mock_client();
    // replica-b holds the Lease for 1 s at a time.
    let verifier = api_server.run(Scenario::LeaseTakeoverAfterExpiryLosesTheRace);
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
    drop(elector);
    timeout(verifier).await;
}

#[tokio::test]
async fn takes_a_released_lease_at_once() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::LeaseReleasedTakenAtOnce);
    assert!(elector(client).try_acquire_or_renew().await.unwrap());
    timeout(verifier).await;
}

#[tokio::test]
async fn the_holder_steps_down_when_renewals_hang_past_the_deadline() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::LeaseRenewalHangs);
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
    timeout(verifier).await;
}

#[tokio::test]
async fn the_hold_lapses_at_the_renew_deadline_and_ends_when_another_replica_holds_the_lease() {
    let (client, api_server) = mock_client();
    let verifier = api_server.run(Scenario::LeaseCreatedRenewedThenTakenByAnother);
    let settings = LeaseSettings {
        renew_deadline: Duration::from_millis(300),
        ..LeaseSettings::new("sluice-system", "replica-a")
    };
    assert!(settings.round_deadline() < settings.renew_deadline);
    let mut elector = LeaderElector::new(client, settings);
    let leadership = elector.leadership();
    assert!(!leadership.holds(), "not before the Lease is taken");
    assert!(elector.try_acquire_or_renew().await.unwrap());
    assert!(leadership.holds());
    // No renewal within the renew deadline: the hold lapses by itself, no task needs to clear it.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(!leadership.holds());
    let refused = leadership.check().unwrap_err().to_string();
    assert!(
        refused.starts_with("not the leader: write refused"),
        "{refused}"
    );
    assert!(elector.try_acquire_or_renew().await.unwrap());
    assert!(leadership.holds(), "renewed");
    // replica-b took the Lease over: lost at once, well before the deadline.
    assert!(!elector.try_acquire_or_renew().await.unwrap());
    assert!(!leadership.holds());
    drop(elector);
    timeout(verifier).await;
}
