# syntax=docker/dockerfile:1
# The `sluice` binary (controller and CLI) in a small image:
#   docker build -t sluice . && docker run --rm sluice --help
# The Envoy filter (dist/sluice_filter.wasm, `make wasm`) is not in it: Envoy loads the filter, the
# controller only names it in the ECDS file it writes.

# The toolchain the tests run (the workspace needs >= its highest rust-version; a test checks); bookworm
# builds against the same glibc as the runtime image below.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Cargo loads every workspace member's manifest, so every member is copied (a test checks), and
# nothing else: docs, demo data and scripts changing never invalidate the build.
COPY Cargo.toml Cargo.lock ./
COPY cohort cohort
COPY filter filter
COPY rollout rollout
COPY controller controller
COPY cli cli
COPY tests tests
COPY bench bench
# The crate registry and the target dir live in BuildKit caches, so a source change recompiles the
# sluice crates, not every dependency. The cache is not part of the image: the binary is copied out.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sluice --bin sluice \
    && install -D -m 0755 target/release/sluice /out/sluice

# sluice links only glibc and libgcc_s (rustls with ring: no OpenSSL). distroless/cc has those and the
# CA certificates that HTTPS webhooks and Prometheus are verified against, and no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/sluice /usr/local/bin/sluice
# distroless's `nonroot` user, numerically, so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["--help"]
