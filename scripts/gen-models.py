#!/usr/bin/env python3
"""Distil the botocore service models Berth speaks into wire-shape-only JSON.

The AWS service models are Berth's wire contract. The server embeds a copy of
each model's shapes (types, members, required lists, enums, ranges, and the
names members take on the wire) so one protocol layer can read every request
and write every response from it. Documentation strings are dropped: only the
machine-readable contract is kept.

EC2's model is enormous (700+ operations): only the operations listed in
SUBSETS are embedded, with the shapes they reach (docs/unwritten-rules.md).

Usage: scripts/gen-models.py   (needs the pinned botocore from tests/requirements.txt)
"""
import gzip
import json
import os
import sys

import botocore

SERVICES = {
    "ecs": "2014-11-13",
    "ecr": "2015-09-21",
    "logs": "2014-03-28",
    "ec2": "2016-11-15",
    "elbv2": "2015-12-01",
    "cloudwatch": "2010-08-01",
    "application-autoscaling": "2016-02-06",
    "servicediscovery": "2017-03-14",
}

# The operations embedded of a model too large to embed whole: what Berth implements and
# what the Fargate issue (VPCs, subnets, security groups, network interfaces, tags) needs.
SUBSETS = {
    "ec2": [
        "DescribeAvailabilityZones",
        "DescribeVpcs", "CreateVpc", "DeleteVpc",
        "DescribeSubnets", "CreateSubnet", "DeleteSubnet",
        "DescribeSecurityGroups", "CreateSecurityGroup", "DeleteSecurityGroup", "DescribeSecurityGroupRules",
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress",
        "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress",
        "DescribeNetworkInterfaces",
        "CreateTags", "DescribeTags", "DeleteTags",
    ],
}

KEEP_SHAPE = {"type", "members", "required", "member", "key", "value", "enum",
              "min", "max", "pattern", "exception", "error", "timestampFormat",
              "jsonvalue", "sensitive", "flattened", "locationName"}
# How a reference to a shape (a structure member, a list member, a map key or value) reads
# on the wire: its element or parameter name, and whether a list or map is flattened.
KEEP_REF = {"shape", "jsonvalue", "locationName", "queryName", "flattened"}
# Serialisation traits Berth's query and EC2 protocol modules do not implement: a form/XML
# model using them must not be embedded silently.
UNSUPPORTED = {"xmlAttribute", "location", "eventstream", "payload", "hostLabel"}
XML_PROTOCOLS = {"query", "ec2"}


def load(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version)
    for name in ("service-2.json", "service-2.json.gz"):
        path = os.path.join(base, name)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                return json.load(f)
    sys.exit(f"no model for {service} {version} under {base}")


def reachable(model, operations):
    """The names of every shape the operations' inputs, outputs and errors reach."""
    seen, todo = set(), []
    for op in operations:
        spec = model["operations"][op]
        todo += [spec[k]["shape"] for k in ("input", "output") if k in spec]
        todo += [e["shape"] for e in spec.get("errors", [])]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = model["shapes"][name]
        todo += [m["shape"] for m in shape.get("members", {}).values()]
        todo += [shape[k]["shape"] for k in ("member", "key", "value") if k in shape]
    return seen


def check_supported(protocols, service, name, spec):
    if not XML_PROTOCOLS & set(protocols):
        return
    used = UNSUPPORTED & set(spec)
    if used:
        sys.exit(f"{service}: {name} uses {sorted(used)}, which Berth's protocol layer cannot serialise")


def distil(service, model):
    meta = model["metadata"]
    operations = SUBSETS.get(service, sorted(model["operations"]))
    shapes = reachable(model, operations) if service in SUBSETS else set(model["shapes"])
    out = {
        "botocore": botocore.__version__,
        "apiVersion": meta["apiVersion"],
        "protocols": meta.get("protocols", [meta["protocol"]]),
        "signingName": meta.get("signingName", meta["endpointPrefix"]),
        "targetPrefix": meta.get("targetPrefix"),
        "jsonVersion": meta.get("jsonVersion"),
        "xmlNamespace": meta.get("xmlNamespace"),
        "operations": {},
        "shapes": {},
    }
    for name in sorted(operations):
        op = model["operations"][name]
        out["operations"][name] = {
            "input": op.get("input", {}).get("shape"),
            "output": op.get("output", {}).get("shape"),
            "resultWrapper": op.get("output", {}).get("resultWrapper"),
            "errors": [e["shape"] for e in op.get("errors", [])],
        }
    for name in sorted(shapes):
        shape = model["shapes"][name]
        check_supported(out["protocols"], service, name, shape)
        s = {k: v for k, v in shape.items() if k in KEEP_SHAPE}
        if "members" in s:
            for m, spec in s["members"].items():
                check_supported(out["protocols"], service, f"{name}.{m}", spec)
            s["members"] = {m: {k: v for k, v in spec.items() if k in KEEP_REF}
                            for m, spec in s["members"].items()}
        for k in ("member", "key", "value"):
            if k in s:
                s[k] = {r: v for r, v in s[k].items() if r in KEEP_REF}
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
        distilled = distil(service, load(service, version))
        extend(service, distilled)
        with open(os.path.join(dest, f"{service}.json"), "w") as f:
            json.dump(distilled, f, indent=None, separators=(",", ":"), sort_keys=True)
            f.write("\n")
        print(f"{service}: {len(distilled['operations'])} operations, "
              f"{len(distilled['shapes'])} shapes (botocore {botocore.__version__})")


if __name__ == "__main__":
    main()
