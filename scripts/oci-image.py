#!/usr/bin/env python3
"""Packs the filter into an OCI image layout directory that Istio's WasmPlugin can pull once pushed.

    python3 scripts/oci-image.py [--wasm dist/sluice_filter.wasm] [--out dist/oci/sluice-filter] [--tag 0.1.0]

The image is the Wasm image spec's "compat" variant (what Istio's fetcher reads, and what `docker
build` of a `FROM scratch` image gives): an OCI image manifest with exactly one
application/vnd.oci.image.layer.v1.tar+gzip layer whose tar holds `plugin.wasm` at its root, and the
manifest annotation module.wasm.image/variant=compat. No Docker daemon: `skopeo copy --preserve-digests
oci:OUT:TAG docker://REGISTRY/sluice-filter:TAG` pushes it unchanged (same manifest bytes, same digest).

Reproducible: the tar entry has fixed mtime, owner and mode, gzip's header has mtime 0 and no file
name, and the JSON is written with sorted keys, so the same plugin.wasm gives the same digest (with the
same zlib: another zlib may compress the same tar to other bytes).

Istio compares a WasmPlugin's `sha256` with the image's manifest digest for an oci:// url (the
module's own sha256 only for an http(s) url), so the manifest digest is what this prints for it.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tarfile

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_MAGIC = b"\0asm"


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(wasm):
    """The uncompressed layer: one regular file, plugin.wasm, with nothing that varies by machine."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entry = tarfile.TarInfo("plugin.wasm")
        entry.size = len(wasm)
        entry.mode = 0o644
        entry.mtime = 0
        entry.uid = entry.gid = 0
        entry.uname = entry.gname = ""
        tar.addfile(entry, io.BytesIO(wasm))
    return out.getvalue()


def gzipped(data):
    out = io.BytesIO()
    # mtime=0 and an empty name keep the gzip header free of the build's time and paths.
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def image_blobs(wasm, tag):
    """(blobs by digest, manifest descriptor, index.json bytes) of the compat image of `wasm`."""
    tar = layer_tar(wasm)
    layer = gzipped(tar)
    config = canonical_json({
        # The module's own platform (it is built for wasm32-wasip1); Istio reads no field of the config.
        "architecture": "wasm",
        "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": sha256(layer), "size": len(layer)}],
        "annotations": {"module.wasm.image/variant": "compat"},
    })
    descriptor = {
        "mediaType": MANIFEST_TYPE,
        "digest": sha256(manifest),
        "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }
    index = canonical_json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [descriptor]})
    blobs = {sha256(b): b for b in (layer, config, manifest)}
    return blobs, descriptor, index


def write_layout(out, blobs, index):
    """Writes the layout afresh into `out`: an old layout there (another build, another tag) is replaced."""
    if os.path.exists(out):
        # Only ever delete what this script made: a layout, or an empty directory.
        if not os.path.isdir(out) or (os.listdir(out) and not os.path.isfile(os.path.join(out, "oci-layout"))):
            sys.exit(f"{out} exists and is not an OCI image layout: not replacing it")
        shutil.rmtree(out)
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    for digest, data in sorted(blobs.items()):
        with open(os.path.join(out, "blobs", "sha256", digest.split(":", 1)[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(index)


def workspace_version(root):
    with open(os.path.join(root, "Cargo.toml")) as f:
        match = re.search(r'^version = "([^"]+)"', f.read(), re.M)
    return match.group(1) if match else "latest"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wasm", default=os.path.join(root, "dist/sluice_filter.wasm"),
                        help="the module to pack (default: dist/sluice_filter.wasm, from `make wasm`)")
    parser.add_argument("--out", default=os.path.join(root, "dist/oci/sluice-filter"),
                        help="the OCI image layout directory to write (replaced if it holds one)")
    parser.add_argument("--tag", default=workspace_version(root),
                        help="the tag in the layout, as in oci:OUT:TAG (default: the workspace version)")
    args = parser.parse_args()
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.tag):
        sys.exit(f"--tag {args.tag!r} is not a valid image tag")
    with open(args.wasm, "rb") as f:
        wasm = f.read()
    # Istio rejects a module without the magic after pulling; refuse to pack one before anyone pushes it.
    if not wasm.startswith(WASM_MAGIC):
        sys.exit(f"{args.wasm} is not a WebAssembly module (no \\0asm magic)")
    blobs, descriptor, index = image_blobs(wasm, args.tag)
    write_layout(args.out, blobs, index)
    layer = json.loads(blobs[descriptor["digest"]])["layers"][0]
    # As typed for a path under the working directory, so the printed commands can be pasted.
    out = os.path.relpath(args.out)
    out = args.out if out.startswith("..") else out
    digest = descriptor["digest"]
    print(f"{out}:{args.tag}  manifest {digest}")
    print(f"  plugin.wasm {len(wasm)} bytes, layer {layer['size']} bytes (gzip), manifest {descriptor['size']} bytes")
    # --preserve-digests: a registry that refused the OCI manifest would otherwise get a converted
    # one, whose digest is not the sha256 printed below; skopeo then fails instead.
    print(f"push:   skopeo copy --preserve-digests oci:{out}:{args.tag} docker://REGISTRY/sluice-filter:{args.tag}")
    print("WasmPlugin spec:")
    print(f"  url: oci://REGISTRY/sluice-filter:{args.tag}")
    print(f"  sha256: {digest.split(':', 1)[1]}")


if __name__ == "__main__":
    main()
