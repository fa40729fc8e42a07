#!/usr/bin/env python3
"""Regenerate the checked-in seed corpus under fuzz/corpus/ (small files).

Run from anywhere: python3 fuzz/seeds.py. Sources: tests/golden/*.yaml,
examples/*.yaml, examples/review-vespaset.json, plus hand-written edge cases.
"""
import copy
import json
import pathlib
import random

import yaml

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
CORPUS = FUZZ / "corpus"


def load_yaml(rel):
    return [d for d in yaml.safe_load_all((ROOT / rel).read_text()) if d is not None]


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def review(obj, kind, op="CREATE", api="admission.k8s.io/v1", ns="vespa", old=None, **extra):
    group, _, version = (obj.get("apiVersion", "v1") if isinstance(obj, dict) else "v1").rpartition("/")
    req = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
        "name": obj.get("metadata", {}).get("name", "") if isinstance(obj, dict) else "",
        "namespace": ns,
        "operation": op,
        "userInfo": {"username": "dev@example.com", "groups": ["system:authenticated"]},
        "object": None if op == "DELETE" else obj,
        "oldObject": old if old is not None else (obj if op == "DELETE" else None),
        "dryRun": False,
    }
    req.update(extra)
    return json.dumps({"apiVersion": api, "kind": "AdmissionReview", "request": req}, indent=1)


def main():
    stripped = load_yaml("tests/golden/seed-step4-stripped.yaml")[0]
    step4 = load_yaml("tests/golden/seed-step4-vespaset.yaml")[0]
    step5 = load_yaml("tests/golden/seed-step5-vespaset.yaml")[0]
    example = load_yaml("examples/vespaset.yaml")[0]
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "vespa-app-0", "namespace": "vespa", "labels": {"app": "vespa"}},
        "spec": {"containers": [{"name": "vespa", "image": "vespaengine/vespa"}]},
    }
    cfg_pod = copy.deepcopy(pod)
    cfg_pod["metadata"]["labels"]["app.kubernetes.io/component"] = "configserver"
    pod4 = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "vespa-app-1", "namespace": "vespa",
                     "annotations": {"tls.vespa.ai/injected": "v1-0000000000000000"}},
        "spec": copy.deepcopy(step4["spec"]["application"]["podTemplate"]["spec"]),
    }
    other_pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
                 "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
    opt_out = copy.deepcopy(stripped)
    opt_out["metadata"]["annotations"] = {"tls.vespa.ai/inject": "false"}
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "vespa", "labels": {"tls.vespa.ai/injection": "enforced"}}}
    downgraded = copy.deepcopy(namespace)
    downgraded["metadata"]["labels"]["tls.vespa.ai/injection"] = "enabled"

    # review: AdmissionReview bodies.
    write("review", "vespaset-stripped-v1-create.json", review(stripped, "VespaSet"))
    write("review", "vespaset-stripped-v1beta1-create.json",
          review(stripped, "VespaSet", api="admission.k8s.io/v1beta1"))
    write("review", "vespaset-stripped-v1-update.json", review(stripped, "VespaSet", op="UPDATE", old=step4))
    write("review", "vespaset-v1-delete.json", review(step4, "VespaSet", op="DELETE"))
    write("review", "vespaset-step4-v1-create.json", review(step4, "VespaSet"))
    write("review", "vespaset-step5-v1beta1-update.json",
          review(step5, "VespaSet", op="UPDATE", api="admission.k8s.io/v1beta1", old=stripped))
    write("review", "vespaset-example-v1-create.json", review(example, "VespaSet"))
    write("review", "vespaset-opt-out.json", review(opt_out, "VespaSet"))
    write("review", "pod-v1-create.json", review(pod, "Pod"))
    write("review", "pod-configserver-v1beta1-create.json",
          review(cfg_pod, "Pod", api="admission.k8s.io/v1beta1"))
    write("review", "pod-stale-fingerprint.json", review(pod4, "Pod"))
    write("review", "pod-other.json", review(other_pod, "Pod"))
    write("review", "pod-status-subresource.json", review(pod, "Pod", op="UPDATE", subResource="status"))
    write("review", "namespace-downgrade.json",
          review(downgraded, "Namespace", op="UPDATE", old=namespace, ns=""))
    write("review", "examples-review-vespaset.json", (ROOT / "examples/review-vespaset.json").read_bytes())
    write("review", "edge-empty.json", "")
    write("review", "edge-object.json", "{}")
    write("review", "edge-no-request.json", '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}')
    write("review", "edge-wrong-version.json",
          '{"apiVersion":"admission.k8s.io/v2","kind":"AdmissionReview","request":{}}')
    write("review", "edge-no-uid.json",
          '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":'
          '{"kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE"}}')
    write("review", "edge-object-not-object.json",
          '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",'
          '"kind":{"group":"k8s.ai.vespa","version":"v1","kind":"VespaSet"},"operation":"CREATE","object":[]}}')
    write("review", "edge-deep.json", "[" * 200 + "]" * 200)

    # Compact, as the apiserver writes reviews: what the hand-written reader
    # (src/scan.rs) reads; and bodies with what it must leave to serde.
    compact = lambda text: json.dumps(json.loads(text), separators=(",", ":"))
    write("review", "compact-pod-v1-create.json", compact(review(pod, "Pod")))
    write("review", "compact-vespaset-step4-v1-create.json", compact(review(step4, "VespaSet")))
    pod_text = compact(review(pod, "Pod"))
    for name, old, new in [
        ("escaped-key", '"metadata":', '"metad\\u0061ta":'),
        ("lone-surrogate", '"metadata":', '"x":"\\ud800","metadata":'),
        ("surrogate-pair", '"metadata":', '"x":"\\ud83d\\ude00","metadata":'),
        ("exponent", '"metadata":', '"x":1e400,"metadata":'),
        ("numbers", '"metadata":', '"x":[-0,0.5,-7,18446744073709551616],"metadata":'),
        ("escaped-env-name", '"containers":[{',
         '"containers":[{"env":[{"name":"VESPA_TLS\\u005fCONFIG_FILE","value":"v"},{"name":"A"}],'),
        ("duplicate-uid", '"uid":', '"uid":"again","uid":'),
    ]:
        assert old in pod_text, name
        write("review", f"scan-{name}.json", pod_text.replace(old, new, 1))

    # cli_yaml: files for `inject`/`check`.
    for rel in ["tests/golden/seed-step4-stripped.yaml", "tests/golden/seed-step4-vespaset.yaml",
                "tests/golden/seed-step5-vespaset.yaml", "examples/vespaset.yaml", "examples/namespaces.yaml"]:
        write("cli_yaml", rel.replace("/", "_"), (ROOT / rel).read_text())
    write("cli_yaml", "vespaset.json", json.dumps(example, indent=2))
    write("cli_yaml", "two-docs.json", json.dumps([pod, stripped]))
    write("cli_yaml", "multi-doc.yaml", "---\n".join(yaml.safe_dump(d) for d in [pod, cfg_pod, other_pod, opt_out]))
    write("cli_yaml", "pod-stale.yaml", yaml.safe_dump(pod4))
    write("cli_yaml", "anchors.yaml", "a: &x {b: [1, 2]}\nc: *x\n")
    write("cli_yaml", "scalars.yaml", "---\n1\n---\n~\n---\n[1, [2]]\n---\n'text'\n")

    # policy_file: policy files and durations.
    write("policy_file", "example-policy.yaml", (ROOT / "examples/policy.yaml").read_text())
    write("policy_file", "empty.yaml", "")
    write("policy_file", "strict.yaml",
          "defaultMode: enabled\ndefaults:\n  key-algorithm: RSA\n  key-size: 4096\n  key-encoding: PKCS1\n"
          "constraints:\n  allowOptOut: false\n  allowMixedMode: true\n  minRenewBefore: 1h\n  maxDuration: 8760h\n")
    write("policy_file", "ed25519.yaml", "defaults: {key-algorithm: Ed25519, common-name: '{namespace}'}\n")
    write("policy_file", "admins.yaml",
          "excludedNamespaces: [kube-system, tools]\nlabelAdmins: {users: [alice], groups: []}\n")
    write("policy_file", "bad.yaml", "constraints:\n  maxDuration: 1h\n  minRenewBefore: 2h\n")
    write("policy_file", "durations.txt",
          "720h\n1h30m\n1.5h\n.5s\n0\n-0\n+1h\n10us\n10\u00b5s\n2562047h\n2562048h\n1.h\n1h1ns\n")

    # duration: Go durations as text (the target also builds its own from the bytes).
    write("duration", "durations.txt", (CORPUS / "policy_file" / "durations.txt").read_bytes())
    write("duration", "720h", "720h")
    write("duration", "max", "2562047h47m16.854775807s")

    # review_structured, annotations, duration: bytes for `arbitrary`.
    rng = random.Random(6)
    for target in ["review_structured", "annotations", "duration"]:
        write(target, "zeros-64", bytes(64))
        write(target, "ones-256", bytes([0xFF]) * 256)
        for i, n in enumerate([32, 128, 512, 2048]):
            write(target, f"random-{i}", bytes(rng.randrange(256) for _ in range(n)))


if __name__ == "__main__":
    main()
