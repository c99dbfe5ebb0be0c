#!/usr/bin/env python3
"""Distil the botocore service models Berth speaks into wire-shape-only JSON.

The AWS service models are Berth's wire contract. The server embeds a copy of
each model's shapes (types, members, required lists, enums, ranges) so one
generic validator can check every request against it. Documentation strings are
dropped: only the machine-readable contract is kept.

Usage: scripts/gen-models.py   (needs the pinned botocore from tests/requirements.txt)
"""
import gzip
import json
import os
import sys

import botocore

SERVICES = {"ecs": "2014-11-13", "ecr": "2015-09-21", "logs": "2014-03-28"}
KEEP_SHAPE = {"type", "members", "required", "member", "key", "value", "enum",
              "min", "max", "pattern", "exception", "error", "timestampFormat",
              "jsonvalue", "sensitive"}
KEEP_MEMBER = {"shape", "jsonvalue"}


def load(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version)
    for name in ("service-2.json", "service-2.json.gz"):
        path = os.path.join(base, name)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return json.load(f)
    sys.exit(f"no model for {service} {version} under {base}")


def distil(model):
    meta = model["metadata"]
    out = {
        "botocore": botocore.__version__,
        "targetPrefix": meta.get("targetPrefix"),
        "jsonVersion": meta.get("jsonVersion"),
        "operations": {},
        "shapes": {},
    }
    for name, op in sorted(model["operations"].items()):
        out["operations"][name] = {
            "input": op.get("input", {}).get("shape"),
            "output": op.get("output", {}).get("shape"),
            "errors": [e["shape"] for e in op.get("errors", [])],
        }
    for name, shape in sorted(model["shapes"].items()):
        s = {k: v for k, v in shape.items() if k in KEEP_SHAPE}
        if "members" in s:
            s["members"] = {m: {k: v for k, v in spec.items() if k in KEEP_MEMBER}
                            for m, spec in s["members"].items()}
        for k in ("member", "key", "value"):
            if k in s:
                s[k] = {"shape": s[k]["shape"]}
        out["shapes"][name] = s
    return out


# Berth's own additions to the wire contract, sent only by Berth's agent (AWS SDKs never send
# them): the health of a task and of each container, which ECS's agent reports over a private
# channel instead.
EXTENSIONS = {
    "ecs": {
        "SubmitTaskStateChangeRequest": {"healthStatus": {"shape": "HealthStatus"}},
        "ContainerStateChange": {"healthStatus": {"shape": "HealthStatus"}},
    },
}


def extend(service, distilled):
    for shape, members in EXTENSIONS.get(service, {}).items():
        distilled["shapes"][shape]["members"].update(members)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    dest = os.path.join(here, "..", "crates", "berth-api", "models")
    os.makedirs(dest, exist_ok=True)
    for service, version in SERVICES.items():
        distilled = distil(load(service, version))
        extend(service, distilled)
        with open(os.path.join(dest, f"{service}.json"), "w") as f:
            json.dump(distilled, f, indent=None, separators=(",", ":"), sort_keys=True)
            f.write("\n")
        print(f"{service}: {len(distilled['operations'])} operations, "
              f"{len(distilled['shapes'])} shapes (botocore {botocore.__version__})")


if __name__ == "__main__":
    main()
