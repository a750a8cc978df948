# sluice: `make run` serves routed traffic through a real Envoy; `make test` passes all tests.
# Every target installs what it needs (idempotently): a bare machine needs nothing else.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo

.PHONY: help demo demo-mirror deps wasm oci controller run envoy test lint unit integration bench clean

help:
	@echo "make demo   the main job in one command: a rollout walks its rings on real SLIs, a bad one is rolled back (~2 min)"
	@echo "make demo-mirror  the demo with a mirror stage: act 2's broken v3 is caught before any user reaches it"
	@echo "make run    the demo's stack left running: watch, steer and break a rollout (Ctrl-C stops)"
	@echo "make envoy  only Envoy with the filter and two upstreams, a fixed config (Ctrl-C stops)"
	@echo "make test   install toolchains and Envoy, build, lint and run every test"
	@echo "make wasm   write the optimized filter to dist/sluice_filter.wasm"
	@echo "make oci    the filter as an OCI image layout in dist/oci/sluice-filter (push it with skopeo; prints the WasmPlugin sha256)"
	@echo "make bench  native decide benchmark and Envoy load benchmark (not part of test)"

deps:
	bash scripts/install-wasm-toolchain.sh
	bash scripts/install-envoy.sh
	bash scripts/install-prometheus.sh
	bash scripts/install-skopeo.sh

wasm:
	bash scripts/build-wasm.sh sluice-filter sluice_filter

# No Docker daemon needed: the layout is written by a script and pushed with `skopeo copy`.
oci: wasm
	python3 scripts/oci-image.py --wasm dist/sluice_filter.wasm --out dist/oci/sluice-filter

demo: deps wasm controller
	python3 scripts/demo.py

demo-mirror: deps wasm controller
	python3 scripts/demo.py --mirror

run: deps wasm controller
	python3 scripts/demo.py --play

envoy: deps wasm
	bash scripts/run-local.sh

lint:
	$(CARGO) fmt --all -- --check
	python3 scripts/check-layout.py
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

unit: deps
	$(CARGO) test --locked --release -p sluice-cohort -p sluice-filter
	$(CARGO) test --locked -p sluice-rollout -p sluice-controller -p sluice

controller:
	$(CARGO) build --locked -p sluice --bin sluice

integration: deps wasm controller
	$(CARGO) test --locked --release -p sluice-integration-tests

test: deps wasm lint unit integration

bench: deps
	bash scripts/bench.sh

clean:
	rm -rf target dist .run
