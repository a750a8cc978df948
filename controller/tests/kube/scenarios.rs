//! The API server's side of every kube test, one named [`Scenario`] per test: each request the
//! client under test must send, in order (method, URI, content type, body), and the API server's
//! answer. A test starts its scenario with [`ApiServerVerifier::run`] and waits for it with
//! [`timeout`](crate::fixtures::timeout); the plumbing and object builders are in `fixtures.rs`.
//!
//! This file is the index (the enum, and which conversation plays each scenario); each conversation
//! is in `scenarios/<test file>.rs`, and the steps several share are in `fixtures.rs`.

use crate::fixtures::*;
use rollout::api::ConfigKind;
use serde_json::Value;
use tokio::task::JoinHandle;

// Each test file's conversations, in a file of the same name; `cluster` is the stateful API server
// of the scenarios that run the whole controller.
mod batches;
mod cache;
mod cluster;
mod commands;
mod controller;
mod finalizer;
mod leader;
mod lease;
mod resync;
mod rounds;
mod start;
mod stores;
mod traffic_extension;

/// One test's conversation with the API server; the test that plays it follows the `=>`.
pub enum Scenario {
    /// A merge patch of checkout's command annotation, then one of a rollout that is not there
    /// => commands::send_command_merge_patches_only_the_annotation
    SendCommandPatchesOnlyTheAnnotation,
    /// A list of CohortRollouts in every namespace, then in shop
    /// => commands::status_lists_every_namespace_or_one_sorted_by_name
    StatusListEveryNamespaceThenOne,
    /// A round's reads of the rollout given (at step 0), and no write
    /// => controller::after_a_restart_the_first_round_neither_analyses_nor_writes
    FirstRoundAfterRestartOnlyReads(Value),
    /// A round's reads of the rollout given (at step 0, annotated `pause/7f3a`), then the writes
    /// that pause it => controller::the_command_annotation_pauses_the_rollout_once
    CommandAnnotationPausesTheRollout(Value),
    /// No Lease yet: replica-a creates it => lease::creates_the_lease_when_there_is_none
    LeaseCreatedWhenNone,
    /// replica-a holds the Lease and renews it
    /// => lease::renews_its_own_lease_against_the_version_it_read
    LeaseRenewedAgainstTheVersionRead,
    /// replica-b renews, then stops; replica-a's takeover loses a race (409)
    /// => lease::waits_while_another_replica_renews_and_takes_over_once_it_stops
    LeaseTakeoverAfterExpiryLosesTheRace,
    /// Nobody holds the Lease: replica-a takes it => lease::takes_a_released_lease_at_once
    LeaseReleasedTakenAtOnce,
    /// replica-a creates the Lease, renews it, then finds replica-b holding it
    /// => lease::the_hold_lapses_at_the_renew_deadline_and_ends_when_another_replica_holds_the_lease
    LeaseCreatedRenewedThenTakenByAnother,
    /// One renewal answered, the next never
    /// => lease::the_holder_steps_down_when_renewals_hang_past_the_deadline
    LeaseRenewalHangs,
    /// A round's reads of the rollout given (at step 1, on a resource of the kind given), then the
    /// writes that roll it back
    /// => rounds::critical_failure_rolls_back_the_plugin_config_and_records_an_event (WasmPlugin)
    /// and rounds::critical_failure_on_a_traffic_extension_rolls_it_back_and_records_an_event
    CriticalFailureRollsBack(ConfigKind, Value),
    /// A breach while the shared settings are invalid (two city keys differing only in case): no
    /// apply, status ConfigApplied=False, a NOT APPLIED Event; then, settings fixed, the retry
    /// applies the rollback and says so
    /// => rounds::a_rollback_that_cannot_be_applied_is_reported_and_lands_on_the_retry
    RollbackNotAppliedThenLanded(Value),
    /// A first round against a resource (of the kind given) of istio-system that does not list
    /// `shop`: InvalidSpec in status, no apply, no Event
    /// => rounds::a_wasm_plugin_of_another_namespace_must_allow_the_rollout (WasmPlugin)
    /// and rounds::a_traffic_extension_of_another_namespace_must_allow_the_rollout
    NamespaceNotAllowed(ConfigKind),
    /// The first rounds of checkout, then search, on one resource of the kind given
    /// => rounds::two_rollouts_on_one_wasm_plugin_each_merge_their_own_entry (WasmPlugin)
    /// and rounds::two_rollouts_on_one_traffic_extension_each_merge_their_own_entry
    TwoFirstRoundsOnOneResource(ConfigKind),
    /// A first round whose WasmPlugin apply meets a 409: the fresh WasmPlugin is read and merged
    /// into at once => rounds::a_conflict_on_apply_re_reads_and_re_merges_at_once
    WasmPluginApplyConflict,
    /// The start-up CRD check finds no CRD
    /// => rounds::missing_crd_stops_the_controller_at_start_with_what_to_apply
    CrdMissing,
    /// The start-up CRD check finds a CRD without v1alpha1
    /// => rounds::crd_without_this_version_is_reported_at_start
    CrdWithoutThisVersion,
    /// An API server answering by route, up to the controller's first WasmPlugin apply
    /// => start::the_controller_takes_the_lease_then_watches_and_reconciles
    ControllerTakesTheLeaseThenWatchesAndReconciles,
    /// => stores::wasm_plugin_store_loads_plugin_config_and_applies_only_that_field
    WasmPluginLoadThenApplyOnlyPluginConfig,
    /// One read of the resource of the kind given, and no write
    /// => stores::wasm_plugin_store_never_writes_what_the_filter_would_reject (WasmPlugin)
    /// and stores::traffic_extension_store_never_writes_what_the_filter_would_reject
    ResourceLoadOnly(ConfigKind),
    /// => stores::wasm_plugin_without_plugin_config_or_missing_is_a_clear_error
    WasmPluginWithoutPluginConfigThenMissing,
    /// => stores::crd_status_store_reads_the_subresource_and_applies_the_whole_status
    CrdStatusReadThenApplyWholeStatus,
    /// => stores::crd_status_store_never_overwrites_a_status_written_since_it_was_read
    CrdStatusChangedSinceRead,
    /// => stores::kube_events_posts_an_event_regarding_the_rollout
    EventRegardingTheRollout,
    /// The WasmPlugin and a status read, then no write
    /// => stores::every_write_is_refused_once_the_lease_is_lost
    ReadsOnlyOnceTheLeaseIsLost,
    /// The rollout given (at 50%, on a resource of the kind given) is being deleted: its entry rolled
    /// back and applied, an Event, then the finalizer released
    /// => finalizer::deleting_a_rollout_at_50_percent_sends_every_user_to_stable_before_it_goes (WasmPlugin)
    /// and finalizer::deleting_a_rollout_on_a_traffic_extension_sends_every_user_to_stable (TrafficExtension)
    DeleteAt50PercentSendsUsersToStable(ConfigKind, Value),
    /// As above, but the first apply meets a 409: a Warning Event and no release; the retry succeeds
    /// => finalizer::a_delete_whose_push_fails_keeps_the_finalizer_says_why_and_retries
    DeletePushFailsThenSucceeds(Value),
    /// Deletes with no entry of the rollout in the WasmPlugin, then no WasmPlugin: released at once
    /// => finalizer::a_rollout_with_nothing_serving_is_released_at_once
    DeleteWithNothingServingReleases(Value),
    /// A new rollout: the finalizer patch, then its first round
    /// => finalizer::the_finalizer_is_added_before_the_first_round_writes_anything
    FinalizerAddedBeforeTheFirstRound,
    /// The whole controller; the Lease is lost while a round waits for the WasmPlugin
    /// => leader::a_leader_that_loses_the_lease_mid_round_writes_nothing
    LeaseLostMidRound,
    /// A round's status read, then a WasmPlugin read never answered
    /// => leader::a_round_waiting_on_the_api_server_is_stopped_at_its_deadline
    RoundPastItsDeadline(Value),
    /// A round's reads, then the status with an Error verdict
    /// => leader::a_hung_prometheus_is_an_error_verdict_within_the_round_deadline
    HungPrometheusCountsAsAnError(Value),
    /// The whole controller; a person re-applies the WasmPlugin with the pluginConfig given
    /// => resync::a_person_reapplying_the_wasm_plugin_gets_the_entries_back_within_a_second
    WasmPluginReappliedByAPerson(Value),
    /// => traffic_extension::traffic_extension_store_loads_wasm_plugin_config_and_applies_only_that_field
    TrafficExtensionLoadThenApplyOnlyPluginConfig,
    /// A Lua TrafficExtension, then a 404
    /// => traffic_extension::traffic_extension_without_wasm_plugin_config_or_missing_is_a_clear_error
    TrafficExtensionLuaThenMissing,
    /// A first round on a TrafficExtension whose apply meets a 409: re-read and merged into at once
    /// => traffic_extension::a_conflict_on_a_traffic_extension_re_reads_and_re_merges_at_once
    TrafficExtensionApplyConflict,
    /// Discovery of extensions.istio.io/v1alpha1: both kinds, WasmPlugin only, then no such group
    /// => traffic_extension::the_controller_watches_the_kinds_the_api_server_serves
    IstioKindsDiscovered,
    /// checkout at step 0 on the WasmPlugin, its spec naming a TrafficExtension too, aborted
    /// => traffic_extension::naming_both_resources_mid_rollout_is_invalid_and_an_abort_still_reaches_the_entry_in_force
    BothTargetsThenAbortOnTheRecordedWasmPlugin,
    /// The same conversation, the round run by the controller (`reconcile_round`)
    /// => controller::a_round_that_fails_after_writing_status_updates_the_gauges_from_it
    BothTargetsAbortedThroughTheController,
    /// As WasmPluginReappliedByAPerson, checkout on a TrafficExtension
    /// => resync::a_person_reapplying_the_traffic_extension_gets_the_entries_back_within_a_second
    TrafficExtensionReappliedByAPerson(Value),
    /// First rounds of checkout, search and cart in one batch: the WasmPlugin read once and applied
    /// once with the three entries
    /// => batches::three_rollouts_changing_in_one_round_on_one_wasm_plugin_give_exactly_one_apply
    /// and batches::rollouts_reconciled_together_share_one_batch_and_one_apply
    ThreeFirstRoundsInOneApply,
    /// As above, the apply failing (500): not applied, for each of the three
    /// => batches::a_failed_apply_is_not_applied_for_any_rollout_of_the_batch
    ThreeFirstRoundsApplyFails,
    /// checkout aborted at step 1 and cart's first round in one batch, cart's status write never
    /// answered: the apply goes at the push deadline with checkout's rollback only
    /// => batches::an_abort_reaches_the_wasm_plugin_while_a_sibling_status_write_hangs
    AbortWhileASiblingStatusWriteHangs,
    /// As above, cart's status read never answered: the WasmPlugin is read without waiting for it
    /// => batches::an_abort_reaches_the_wasm_plugin_while_a_sibling_status_read_hangs
    AbortWhileASiblingStatusReadHangs,
    /// The whole controller: a new rollout's first round, its writes echoed by the watches, then a
    /// person's pause
    /// => cache::the_controllers_own_status_writes_start_no_round_and_a_command_does
    OwnStatusWritesStartNoRound,
}

impl ApiServerVerifier {
    /// Plays `scenario` in the background: each request is asserted, then answered.
    pub fn run(self, scenario: Scenario) -> JoinHandle<()> {
        tokio::spawn(async move {
            match scenario {
                Scenario::SendCommandPatchesOnlyTheAnnotation => {
                    self.send_command_patches_only_the_annotation().await
                }
                Scenario::StatusListEveryNamespaceThenOne => {
                    self.status_list_every_namespace_then_one().await
                }
                Scenario::FirstRoundAfterRestartOnlyReads(rollout) => {
                    self.first_round_after_restart_only_reads(rollout).await
                }
                Scenario::CommandAnnotationPausesTheRollout(rollout) => {
                    self.command_annotation_pauses_the_rollout(rollout).await
                }
                Scenario::LeaseCreatedWhenNone => self.lease_created_when_none().await,
                Scenario::LeaseRenewedAgainstTheVersionRead => {
                    self.lease_renewed_against_the_version_read().await
                }
                Scenario::LeaseTakeoverAfterExpiryLosesTheRace => {
                    self.lease_takeover_after_expiry_loses_the_race().await
                }
                Scenario::LeaseReleasedTakenAtOnce => self.lease_released_taken_at_once().await,
                Scenario::LeaseCreatedRenewedThenTakenByAnother => {
                    self.lease_created_renewed_then_taken_by_another().await
                }
                Scenario::LeaseRenewalHangs => self.lease_renewal_hangs().await,
                Scenario::NamespaceNotAllowed(kind) => self.namespace_not_allowed(kind).await,
                Scenario::RollbackNotAppliedThenLanded(rollout) => {
                    self.rollback_not_applied_then_landed(rollout).await
                }
                Scenario::CriticalFailureRollsBack(kind, rollout) => {
                    self.critical_failure_rolls_back(kind, rollout).await
                }
                Scenario::TwoFirstRoundsOnOneResource(kind) => {
                    self.two_first_rounds_on_one_resource(kind).await
                }
                Scenario::WasmPluginApplyConflict => self.wasm_plugin_apply_conflict().await,
                Scenario::CrdMissing => self.crd_missing().await,
                Scenario::CrdWithoutThisVersion => self.crd_without_this_version().await,
                Scenario::ControllerTakesTheLeaseThenWatchesAndReconciles => {
                    self.controller_takes_the_lease_then_watches_and_reconciles()
                        .await
                }
                Scenario::WasmPluginLoadThenApplyOnlyPluginConfig => {
                    self.wasm_plugin_load_then_apply_only_plugin_config().await
                }
                Scenario::ResourceLoadOnly(kind) => self.resource_load_only(kind).await,
                Scenario::WasmPluginWithoutPluginConfigThenMissing => {
                    self.wasm_plugin_without_plugin_config_then_missing().await
                }
                Scenario::CrdStatusReadThenApplyWholeStatus => {
                    self.crd_status_read_then_apply_whole_status().await
                }
                Scenario::CrdStatusChangedSinceRead => self.crd_status_changed_since_read().await,
                Scenario::EventRegardingTheRollout => self.event_regarding_the_rollout().await,
                Scenario::ReadsOnlyOnceTheLeaseIsLost => {
                    self.reads_only_once_the_lease_is_lost().await
                }
                Scenario::DeleteAt50PercentSendsUsersToStable(kind, rollout) => {
                    self.delete_at_50_percent_sends_users_to_stable(kind, rollout)
                        .await
                }
                Scenario::DeletePushFailsThenSucceeds(rollout) => {
                    self.delete_push_fails_then_succeeds(rollout).await
                }
                Scenario::DeleteWithNothingServingReleases(rollout) => {
                    self.delete_with_nothing_serving_releases(rollout).await
                }
                Scenario::FinalizerAddedBeforeTheFirstRound => {
                    self.finalizer_added_before_the_first_round().await
                }
                Scenario::LeaseLostMidRound => self.lease_lost_mid_round().await,
                Scenario::RoundPastItsDeadline(rollout) => {
                    self.round_past_its_deadline(rollout).await
                }
                Scenario::HungPrometheusCountsAsAnError(rollout) => {
                    self.hung_prometheus_counts_as_an_error(rollout).await
                }
                Scenario::WasmPluginReappliedByAPerson(example) => {
                    self.wasm_plugin_reapplied_by_a_person(example).await
                }
                Scenario::TrafficExtensionLoadThenApplyOnlyPluginConfig => {
                    self.traffic_extension_load_then_apply_only_plugin_config()
                        .await
                }
                Scenario::TrafficExtensionLuaThenMissing => {
                    self.traffic_extension_lua_then_missing().await
                }
                Scenario::TrafficExtensionApplyConflict => {
                    self.traffic_extension_apply_conflict().await
                }
                Scenario::IstioKindsDiscovered => self.istio_kinds_discovered().await,
                Scenario::TrafficExtensionReappliedByAPerson(example) => {
                    self.traffic_extension_reapplied_by_a_person(example).await
                }
                Scenario::ThreeFirstRoundsInOneApply => {
                    self.three_first_rounds_in_one_apply().await
                }
                Scenario::ThreeFirstRoundsApplyFails => self.three_first_rounds_apply_fails().await,
                Scenario::OwnStatusWritesStartNoRound => {
                    self.own_status_writes_start_no_round().await
                }
                Scenario::AbortWhileASiblingStatusReadHangs => {
                    self.abort_goes_out_while_a_sibling_status_read_hangs()
                        .await
                }
                Scenario::AbortWhileASiblingStatusWriteHangs => {
                    self.abort_goes_out_while_a_sibling_status_write_hangs()
                        .await
                }
                Scenario::BothTargetsThenAbortOnTheRecordedWasmPlugin
                | Scenario::BothTargetsAbortedThroughTheController => {
                    self.both_targets_then_abort_on_the_recorded_wasm_plugin()
                        .await
                }
            }
        })
    }
}
