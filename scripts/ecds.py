#!/usr/bin/env python3
"""Writes an Envoy ECDS file (path_config_source) carrying a sluice config, atomically (temp file + rename).

Usage: ecds.py SLUICE_CONFIG.json ECDS_FILE WASM_FILE
"""
import json
import os
import sys

config_path, ecds_path, wasm_path = sys.argv[1:4]
with open(config_path, "rb") as f:
    config = f.read().decode()
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
