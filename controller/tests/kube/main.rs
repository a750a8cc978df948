#![cfg(test)]
//! Kubernetes mode against a mocked API server (kube-rs controller-rs style): one test binary, one
//! fixture that plays the API server (`fixtures.rs`, the mock and object builders; `scenarios.rs`,
//! one named `Scenario` per test that talks to the API server).

mod batches;
mod cache;
mod commands;
mod controller;
mod crd;
mod finalizer;
mod fixtures;
mod kinds;
mod leader;
mod lease;
mod manifests;
mod manifests_istio;
mod resync;
mod rounds;
mod scenarios;
mod start;
mod stores;
mod traffic_extension;
