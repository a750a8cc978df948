#![cfg(test)]
//! `make oci`: the filter as the Wasm "compat" OCI image Istio pulls, read back with skopeo (a real
//! registry client, the tool users push it with): one tar+gzip layer holding plugin.wasm, which is
//! exactly dist/sluice_filter.wasm, and a digest that only the module's bytes decide.

mod common;

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Once;
use std::time::Instant;

const TAG: &str = "test";

fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-oci-{label}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Output of a command that must succeed.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .current_dir(common::repo_root())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// skopeo, installed by `make deps` (scripts/install-skopeo.sh); a bare `cargo test` installs it too.
fn skopeo(args: &[&str]) -> Vec<u8> {
    ensure_skopeo();
    run("skopeo", args)
}

fn ensure_skopeo() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let present = Command::new("skopeo").arg("--version").output().is_ok();
        if !present {
            let installed = Command::new("bash")
                .arg("scripts/install-skopeo.sh")
                .current_dir(common::repo_root())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                installed,
                "skopeo is not installed and scripts/install-skopeo.sh could not install it \
                 (it needs apt-get as root): this test reads the image with skopeo"
            );
        }
    });
}

fn wasm_path() -> PathBuf {
    common::required(
        common::repo_root().join("dist/sluice_filter.wasm"),
        "run `make wasm`",
    )
}

/// Runs scripts/oci-image.py (what `make oci` runs) on `wasm` into `out`; returns what it printed.
fn build(wasm: &Path, out: &Path) -> String {
    let started = Instant::now();
    let printed = run(
        "python3",
        &[
            "scripts/oci-image.py",
            "--wasm",
            wasm.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--tag",
            TAG,
        ],
    );
    println!("oci-image.py took {:?}", started.elapsed());
    String::from_utf8(printed).unwrap()
}

/// The `sha256:` line the script prints for the WasmPlugin.
fn printed_sha256(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("sha256: "))
        .unwrap_or_else(|| panic!("no sha256 line for the WasmPlugin in:\n{printed}"))
        .to_string()
}

fn reference(layout: &Path) -> String {
    format!("oci:{}:{TAG}", layout.display())
}

#[test]
fn the_image_is_the_compat_variant_with_the_built_filter_as_its_only_layer() {
    ensure_skopeo();
    let dir = scratch("image");
    let layout = dir.join("layout");
    let printed = build(&wasm_path(), &layout);
    println!("{printed}");
    let image = reference(&layout);

    let raw = skopeo(&["inspect", "--raw", &image]);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"],
        "compat"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "the compat variant has exactly one layer");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // The digest a registry client computes is the one printed for the WasmPlugin's sha256, which
    // Istio compares with the pulled manifest's digest.
    let inspected: Value = serde_json::from_slice(&skopeo(&["inspect", &image])).unwrap();
    let digest = format!("sha256:{}", printed_sha256(&printed));
    assert_eq!(inspected["Digest"], digest.as_str());
    assert_eq!(digest, format!("sha256:{}", hex_sha256(&raw)));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(inspected["Layers"][0], layers[0]["digest"]);
    let config: Value = serde_json::from_slice(&skopeo(&["inspect", "--config", &image])).unwrap();
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);

    // Copied out as a registry push would (every blob verified against its digest on the way),
    // the manifest keeps its bytes: the digest in the WasmPlugin stays valid after the push.
    let copied = dir.join("copied");
    skopeo(&[
        "copy",
        "--quiet",
        "--preserve-digests",
        &image,
        &format!("dir:{}", copied.display()),
    ]);
    let copied_manifest = fs::read(copied.join("manifest.json")).unwrap();
    assert_eq!(format!("sha256:{}", hex_sha256(&copied_manifest)), digest);

    let layer_hex = layers[0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap();
    let layer = copied.join(layer_hex);
    let listing = String::from_utf8(run("tar", &["-tzf", layer.to_str().unwrap()])).unwrap();
    assert_eq!(
        listing, "plugin.wasm\n",
        "the layer holds only plugin.wasm, at its root"
    );
    let unpacked = dir.join("unpacked");
    fs::create_dir_all(&unpacked).unwrap();
    run(
        "tar",
        &[
            "-xzf",
            layer.to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ],
    );
    let plugin = fs::read(unpacked.join("plugin.wasm")).unwrap();
    let built = fs::read(wasm_path()).unwrap();
    assert!(
        plugin == built,
        "plugin.wasm in the image ({} bytes) is not dist/sluice_filter.wasm ({} bytes)",
        plugin.len(),
        built.len()
    );
    // The config names the uncompressed layer, as image tools check when they unpack it.
    let tar = run("gzip", &["-dc", layer.to_str().unwrap()]);
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        format!("sha256:{}", hex_sha256(&tar)).as_str()
    );
    println!(
        "manifest {digest}: plugin.wasm {} bytes, layer {} bytes",
        plugin.len(),
        layers[0]["size"]
    );
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_digest_depends_only_on_the_module() {
    ensure_skopeo();
    let dir = scratch("reproducible");
    let wasm = wasm_path();
    let first = printed_sha256(&build(&wasm, &dir.join("first")));
    // Built again as on another machine (CI, a colleague): the same module from a file with another
    // name, mode and mtime, in a later second (gzip and tar stamp times in seconds), gives the same
    // digest, so a WasmPlugin's pinned sha256 can be checked against a fresh build.
    let copy = dir.join("copy.wasm");
    fs::copy(&wasm, &copy).unwrap();
    run(
        "touch",
        &["-d", "2001-02-03 04:05:06", copy.to_str().unwrap()],
    );
    run("chmod", &["600", copy.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = printed_sha256(&build(&copy, &dir.join("second")));
    assert_eq!(first, second);
    let again: Value =
        serde_json::from_slice(&skopeo(&["inspect", &reference(&dir.join("second"))])).unwrap();
    assert_eq!(again["Digest"], format!("sha256:{first}").as_str());

    // Another module (the smallest valid one) gives another digest: the sha256 pins the filter.
    let other_wasm = dir.join("empty.wasm");
    fs::write(&other_wasm, b"\0asm\x01\0\0\0").unwrap();
    let other = printed_sha256(&build(&other_wasm, &dir.join("other")));
    assert_ne!(first, other);

    // Rebuilding into an existing layout replaces it: no stale blob of the old module stays behind.
    build(&wasm, &dir.join("other"));
    let blobs = fs::read_dir(dir.join("other/blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 3, "manifest, config and layer only");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn make_oci_builds_the_filter_and_make_deps_installs_skopeo() {
    let dry_run = |target: &str| String::from_utf8(run("make", &["-n", target])).unwrap();
    let oci = dry_run("oci");
    let wasm_at = oci
        .find("scripts/build-wasm.sh sluice-filter sluice_filter")
        .unwrap_or_else(|| panic!("make oci does not build the filter first:\n{oci}"));
    let pack_at = oci
        .find("scripts/oci-image.py --wasm dist/sluice_filter.wasm --out dist/oci/sluice-filter")
        .unwrap_or_else(|| panic!("make oci does not pack dist/sluice_filter.wasm:\n{oci}"));
    assert!(wasm_at < pack_at, "{oci}");
    // A bare machine (CI) gets skopeo from `make test`, which runs deps.
    let deps = dry_run("deps");
    assert!(deps.contains("bash scripts/install-skopeo.sh"), "{deps}");
    assert!(dry_run("test").contains("bash scripts/install-skopeo.sh"));
}

#[test]
fn the_docker_alternative_puts_the_built_filter_alone_at_plugin_wasm() {
    let dockerfile = fs::read_to_string(common::repo_root().join("filter/Dockerfile")).unwrap();
    let instructions: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // One COPY onto scratch is one layer, the compat variant's; the context is dist/.
    assert_eq!(
        instructions,
        ["FROM scratch", "COPY sluice_filter.wasm /plugin.wasm"]
    );
    assert!(
        dockerfile.contains("docker build -f filter/Dockerfile -t REGISTRY/sluice-filter:TAG dist")
    );
    wasm_path();
}
