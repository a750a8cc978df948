#![cfg(test)]
//! Kubernetes mode against a mocked API server (kube-rs controller-rs style): one test binary, one
//! fixture (`fixtures.rs`) that plays the API server.

mod commands;
mod controller;
mod crd;
mod fixtures;
mod lease;
mod manifests;
mod rounds;
mod start;
mod stores;
