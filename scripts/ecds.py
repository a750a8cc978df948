#!/usr/bin/env python3
"""Writes an Envoy ECDS file (path_config_source) carrying a sluice config, atomically (temp file + rename).

Usage: ecds.py SLUICE_CONFIG.json ECDS_FILE WASM_FILE [--override-token-file TOKEN_FILE]

With --override-token-file, testers get an override token of their own: the file's token is used, or a
random one is generated into it (mode 0600) on first use. Its SHA-256 joins the config's
overrides.token_sha256 and the token is printed, so no example ships a guessable secret.
"""
import hashlib
import json
import os
import secrets
import sys


def override_token(path):
    """The token in `path`, generated there first if the file does not exist yet."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(24))
    with open(path) as f:
        return f.read().strip()


args = sys.argv[1:]
token_file = None
if "--override-token-file" in args:
    i = args.index("--override-token-file")
    token_file = args[i + 1]
    del args[i : i + 2]
config_path, ecds_path, wasm_path = args[:3]
with open(config_path, "rb") as f:
    config = f.read().decode()
if token_file:
    token = override_token(token_file)
    doc = json.loads(config)
    overrides = doc.setdefault("overrides", {})
    digest = hashlib.sha256(token.encode()).hexdigest()
    overrides["token_sha256"] = sorted(set(overrides.get("token_sha256", [])) | {digest})
    config = json.dumps(doc)
    print(f"override token for testers: {token}  (in {token_file}; send it as x-sluice-override-token)")
resource = {
    "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
    "name": "sluice",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {
            "name": "sluice",
            "root_id": "sluice",
            "vm_config": {
                "vm_id": "sluice",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": os.path.abspath(wasm_path)}},
            },
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config},
            "fail_open": False,
        },
    },
}
os.makedirs(os.path.dirname(os.path.abspath(ecds_path)), exist_ok=True)
tmp = ecds_path + ".tmp"
with open(tmp, "w") as f:
    json.dump({"resources": [resource]}, f, indent=1)
os.replace(tmp, ecds_path)
