#!/usr/bin/env bash
# Static and (optionally) server-side checks of the deploy/ manifests.
#
#   deploy/check.sh                     render + kubernetes-validate + checkov
#   KUBECONFIG=... deploy/check.sh      ... + `kubectl apply --dry-run=server` against that cluster
#
# 1. Renders `kubectl kustomize deploy/` and `kubectl kustomize deploy/examples/vespa-namespace/`.
# 2. Checks that the rendered policy ConfigMap holds deploy/policy.yaml byte for byte.
# 3. kubernetes-validate --strict on every Kubernetes kind, against the oldest supported
#    Kubernetes (1.30: the preStop `sleep` action) and the newest the tool knows.
#    cert-manager kinds (Issuer, Certificate) are CRDs without a schema there: skipped.
# 3b. The pod webhooks' matchConditions (CEL), evaluated with cel-python on every pod of
#    tests/golden/vespa-pods.yaml, must select exactly its Vespa pods (tests/core/targets.rs
#    checks the webhook's own rule on the same pods).
# 4. checkov (kubernetes framework) on the rendered manifests with deploy/.checkov.yaml;
#    every skipped check is justified in deploy/README.md.
# 5. With KUBECONFIG set: server-side dry run of everything the apiserver serves. Kinds it
#    does not serve (e.g. policy/v1 PodDisruptionBudget on 1.20) and fields it does not know
#    (preStop `sleep` and webhook `matchConditions` before 1.30) are left out, each printed
#    with the reason; steps 3 and 3b cover them against a current Kubernetes. Namespaces
#    that do not exist are created for real first (server dry run needs them) and deleted
#    afterwards.
#
# Tools: kubectl (>= 1.21, for its built-in kustomize v4+), python3 with venv. The PyPI
# packages go to ${VTW_CACHE_DIR:-$HOME/.cache/vespa-tls-webhook}/venv.
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=${VTW_KUBERNETES_VALIDATE_VERSION:-1.37.0}
CHECKOV_VERSION=${VTW_CHECKOV_VERSION:-3.3.30}
CEL_PYTHON_VERSION=${VTW_CEL_PYTHON_VERSION:-0.5.0}
# Oldest Kubernetes the manifests support (lifecycle.preStop.sleep is beta/on-by-default in 1.30).
MIN_K8S_VERSION=1.30.0

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${VTW_CACHE_DIR:-$HOME/.cache/vespa-tls-webhook}
venv=$cache/venv
work=$(mktemp -d "${TMPDIR:-/tmp}/vtw-deploy-check.XXXXXX")
created_namespaces=()
failures=()

step() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
fail() { printf 'check.sh: FAIL: %s\n' "$*" >&2; failures+=("$*"); }
die() { printf 'check.sh: FATAL: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local ns
  for ns in "${created_namespaces[@]}"; do
    delete_namespace "$ns" || printf 'check.sh: warning: could not delete namespace %s\n' "$ns" >&2
  done
  rm -rf "$work"
}
trap cleanup EXIT

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install it by hand and rerun)"
  fi
}

# ---------------------------------------------------------------------------------------
step "tools"
command -v kubectl >/dev/null 2>&1 ||
  die "kubectl not found: install kubectl >= 1.21 (its built-in kustomize renders deploy/)"
kustomize_version=$(kubectl version --client -o json 2>/dev/null |
  sed -n 's/.*"kustomizeVersion": *"\([^"]*\)".*/\1/p')
note "kubectl: $(kubectl version --client -o json 2>/dev/null |
  sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n1), kustomize ${kustomize_version:-unknown}"
case "$kustomize_version" in
  v[0-3].*) die "kubectl's kustomize is $kustomize_version; deploy/ needs kustomize v4+ (kubectl >= 1.21)" ;;
esac

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  note "python3 with venv/ensurepip missing: installing python3-venv with apt-get"
  command -v apt-get >/dev/null 2>&1 || die "python3 -m venv is unavailable and apt-get is missing"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
  note "creating venv $venv"
  mkdir -p "$cache"
  python3 -m venv "$venv" || die "python3 -m venv $venv failed"
fi
py=$venv/bin/python
pip_install() { # name version
  note "installing $1==$2 into $venv"
  "$py" -m pip install --quiet --disable-pip-version-check "$1==$2" ||
    die "pip install $1==$2 failed"
}
[ "$("$venv/bin/kubernetes-validate" --version 2>/dev/null || true)" = "$KUBERNETES_VALIDATE_VERSION" ] ||
  pip_install kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"
[ "$("$venv/bin/checkov" --version 2>/dev/null || true)" = "$CHECKOV_VERSION" ] ||
  pip_install checkov "$CHECKOV_VERSION"
"$py" -c 'import importlib.metadata as m, sys; sys.exit(m.version("cel-python") != sys.argv[1])' \
  "$CEL_PYTHON_VERSION" 2>/dev/null || pip_install cel-python "$CEL_PYTHON_VERSION"
note "kubernetes-validate $("$venv/bin/kubernetes-validate" --version), checkov $("$venv/bin/checkov" --version), cel-python $CEL_PYTHON_VERSION"

# ---------------------------------------------------------------------------------------
step "render"
rendered=()
for dir in "$here" "$here/examples/vespa-namespace"; do
  name=$(basename "$dir")
  [ "$dir" = "$here" ] && name=deploy
  out=$work/$name.yaml
  if kubectl kustomize "$dir" >"$out" 2>"$work/$name.err"; then
    note "kubectl kustomize ${dir#"$(dirname "$here")"/} -> $(grep -c '^kind:' "$out") objects"
    rendered+=("$out")
  else
    cat "$work/$name.err" >&2
    die "kubectl kustomize $dir failed"
  fi
done

# Python helper over the rendered multi-document YAML (PyYAML comes with kubernetes-validate).
cat >"$work/manifests.py" <<'PY'
import sys, yaml

def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]

def dump(docs, path):
    with open(path, "w") as f:
        yaml.safe_dump_all(docs, f, sort_keys=False)

def ident(d):
    m = d.get("metadata", {})
    ns = m.get("namespace")
    return f'{d["apiVersion"]} {d["kind"]} {ns + "/" if ns else ""}{m.get("name")}'

cmd = sys.argv[1]
if cmd == "split-certmanager":  # in, k8s-out -> prints the skipped ones
    docs = load(sys.argv[2])
    keep = [d for d in docs if not d["apiVersion"].startswith("cert-manager.io/")]
    for d in docs:
        if d not in keep:
            print(ident(d))
    dump(keep, sys.argv[3])
elif cmd == "policy":  # rendered deploy.yaml, policy.yaml -> exit 1 unless identical
    cms = [d for d in load(sys.argv[2]) if d["kind"] == "ConfigMap"
           and d["metadata"]["name"] == "vespa-tls-webhook-policy"]
    want = open(sys.argv[3]).read()
    if len(cms) != 1 or cms[0].get("data", {}).get("policy.yaml") != want:
        sys.exit("ConfigMap vespa-tls-webhook-policy/policy.yaml differs from deploy/policy.yaml")
elif cmd == "namespaces":  # in -> names of Namespace objects and of namespaces used
    names = set()
    for d in load(sys.argv[2]):
        if d["kind"] == "Namespace":
            names.add(d["metadata"]["name"])
        elif d["metadata"].get("namespace"):
            names.add(d["metadata"]["namespace"])
    print("\n".join(sorted(names)))
elif cmd == "dry-run-set":  # in, out, served-file, server-minor
    docs = load(sys.argv[2])
    served = set(open(sys.argv[4]).read().split())
    minor = int(sys.argv[5])
    keep = []
    for d in docs:
        key = f'{d["apiVersion"]}/{d["kind"]}'
        if key not in served:
            print(f"EXCLUDED {ident(d)}: {d['apiVersion']} {d['kind']} is not served by this "
                  f"apiserver (validated against a current Kubernetes by kubernetes-validate)")
            continue
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and minor < 30:
            for c in d["spec"]["template"]["spec"].get("containers", []):
                lc = c.get("lifecycle") or {}
                for hook in ("preStop", "postStart"):
                    if "sleep" in (lc.get(hook) or {}):
                        del lc[hook]
                        print(f"STRIPPED {ident(d)} container {c['name']}: lifecycle.{hook}.sleep "
                              f"(needs Kubernetes >= 1.30; validated by kubernetes-validate)")
                if "lifecycle" in c and not c["lifecycle"]:
                    del c["lifecycle"]
        if d["kind"].endswith("WebhookConfiguration") and minor < 30:
            for w in d.get("webhooks", []):
                if w.pop("matchConditions", None) is not None:
                    print(f"STRIPPED {ident(d)} webhook {w['name']}: matchConditions "
                          f"(needs Kubernetes >= 1.30; checked by kubernetes-validate and "
                          f"the CEL step)")
        keep.append(d)
    dump(keep, sys.argv[3])
elif cmd == "match-conditions":  # rendered deploy.yaml, corpus -> exit 1 on a disagreement
    import celpy
    corpus = yaml.safe_load(open(sys.argv[3]))
    env = celpy.Environment()
    bad = []
    hooks = [(d, w) for d in load(sys.argv[2]) if d["kind"].endswith("WebhookConfiguration")
             for w in d["webhooks"]]
    pod_hooks = [(d, w) for d, w in hooks
                 if any("pods" in r["resources"] for r in w.get("rules", []))]
    if not pod_hooks:
        sys.exit("no pod webhook in the rendered manifests")
    for d, w in pod_hooks:
        conditions = w.get("matchConditions") or []
        if not conditions:
            bad.append(f"{ident(d)} webhook {w['name']}: no matchConditions")
            continue
        programs = [(c["name"], env.program(env.compile(c["expression"]))) for c in conditions]
        wrong = 0
        for case in corpus:
            activation = {"object": celpy.json_to_cel(case["pod"])}
            # The apiserver calls the webhook only when every condition is true.
            sent = all(bool(p.evaluate(activation)) for _, p in programs)
            if sent != case["vespa"]:
                wrong += 1
                bad.append(f"{ident(d)} webhook {w['name']}: {case['name']!r}: "
                           f"sent to the webhook: {sent}, a Vespa pod: {case['vespa']}")
        if not wrong:
            print(f"{w['name']} ({', '.join(n for n, _ in programs)}): of {len(corpus)} pods, "
                  f"exactly the {sum(c['vespa'] for c in corpus)} Vespa pods are sent")
    if bad:
        sys.exit("\n".join(bad))
else:
    sys.exit(f"unknown command {cmd}")
PY
manifests() { "$py" "$work/manifests.py" "$@"; }

# ---------------------------------------------------------------------------------------
step "policy ConfigMap == deploy/policy.yaml"
if manifests policy "$work/deploy.yaml" "$here/policy.yaml"; then
  note "ok"
else
  fail "the rendered policy ConfigMap does not hold deploy/policy.yaml verbatim"
fi

# ---------------------------------------------------------------------------------------
step "kubernetes-validate --strict"
latest=$("$venv/bin/kubernetes-validate" --help | sed -n 's/.*Defaults to \([0-9.]*\).*/\1/p' | head -n1)
for f in "${rendered[@]}"; do
  k8s=$work/$(basename "$f" .yaml).k8s.yaml
  while read -r skipped; do
    [ -n "$skipped" ] && note "skipped (cert-manager CRD, no schema in kubernetes-validate): $skipped"
  done < <(manifests split-certmanager "$f" "$k8s")
  for v in "$MIN_K8S_VERSION" ${latest:+"$latest"}; do
    if "$venv/bin/kubernetes-validate" --strict -k "$v" "$k8s" >"$work/kv.out" 2>&1 &&
      ! grep -q "^WARN" "$work/kv.out"; then
      note "$(basename "$f"): $(grep -c '^INFO .* passed' "$work/kv.out") objects valid against Kubernetes $v"
    else
      cat "$work/kv.out" >&2
      fail "kubernetes-validate: $(basename "$f") against Kubernetes $v"
    fi
  done
done

# ---------------------------------------------------------------------------------------
step "matchConditions on tests/golden/vespa-pods.yaml (cel-python)"
if manifests match-conditions "$work/deploy.yaml" "$(dirname "$here")/tests/golden/vespa-pods.yaml" \
  >"$work/mc.out" 2>&1; then
  sed 's/^/    /' "$work/mc.out"
else
  cat "$work/mc.out" >&2
  fail "the pod webhooks' matchConditions do not select exactly the Vespa pods of tests/golden/vespa-pods.yaml"
fi

# ---------------------------------------------------------------------------------------
step "checkov (config: deploy/.checkov.yaml)"
checkov_args=()
for f in "${rendered[@]}"; do checkov_args+=(-f "$f"); done
if (cd "$work" && "$venv/bin/checkov" --config-file "$here/.checkov.yaml" "${checkov_args[@]}") \
  >"$work/checkov.out" 2>"$work/checkov.err"; then
  sed -n '/scan results/,$p' "$work/checkov.out" | grep -v '^$' | sed 's/^/    /'
else
  cat "$work/checkov.out" "$work/checkov.err" >&2
  fail "checkov found problems (fix them, or skip with a reason in deploy/.checkov.yaml AND deploy/README.md)"
fi

# ---------------------------------------------------------------------------------------
delete_namespace() { # created by this script, only dry-run objects were ever sent into it
  local ns=$1 i
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  for i in $(seq 1 20); do
    kubectl get namespace "$ns" >/dev/null 2>&1 || { note "deleted namespace $ns"; return 0; }
    sleep 0.5
  done
  # A control plane without kube-controller-manager (tests/e2e) never finalizes namespaces.
  # The namespace is empty (only dry-run objects were sent into it), so finalize it here.
  kubectl get namespace "$ns" -o json |
    "$py" -c 'import json,sys; d=json.load(sys.stdin); d["spec"]["finalizers"]=[]; print(json.dumps(d))' |
    kubectl replace --raw "/api/v1/namespaces/$ns/finalize" -f - >/dev/null
  for i in $(seq 1 20); do
    kubectl get namespace "$ns" >/dev/null 2>&1 || {
      note "deleted namespace $ns (finalized by check.sh: no namespace controller is running)"
      return 0
    }
    sleep 0.5
  done
  return 1
}

if [ -n "${KUBECONFIG:-}" ]; then
  step "server-side dry run (KUBECONFIG=$KUBECONFIG)"
  if ! kubectl version -o json >"$work/version.json" 2>"$work/version.err" ||
    ! grep -q '"serverVersion"' "$work/version.json"; then
    cat "$work/version.err" >&2
    fail "cannot reach the apiserver of KUBECONFIG=$KUBECONFIG"
  else
    server_minor=$("$py" -c 'import json,sys,re; v=json.load(open(sys.argv[1]))["serverVersion"]; print(re.sub(r"\D.*","",v["minor"]))' "$work/version.json")
    server_version=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["serverVersion"]["gitVersion"])' "$work/version.json")
    note "apiserver $server_version"
    # Every served apiVersion/Kind pair.
    : >"$work/served"
    while read -r gv; do
      kubectl get --raw "$( [ "${gv%/*}" = "$gv" ] && echo "/api/$gv" || echo "/apis/$gv")" 2>/dev/null |
        "$py" -c 'import json,sys; d=json.load(sys.stdin); [print(d["groupVersion"]+"/"+r["kind"]) for r in d["resources"] if "/" not in r["name"]]' \
          >>"$work/served" || true
    done < <(kubectl api-versions)
    for f in "${rendered[@]}"; do
      base=$(basename "$f" .yaml)
      dry=$work/$base.dry-run.yaml
      manifests dry-run-set "$f" "$dry" "$work/served" "$server_minor" | sed 's/^/    /'
      # Server dry run needs the namespaces to exist: create missing ones for real.
      while read -r ns; do
        [ -z "$ns" ] && continue
        if ! kubectl get namespace "$ns" >/dev/null 2>&1; then
          if kubectl create namespace "$ns" --save-config >/dev/null; then
            created_namespaces+=("$ns")
            note "created namespace $ns for the dry run (deleted at the end)"
          else
            fail "could not create namespace $ns for the dry run"
          fi
        fi
      done < <(manifests namespaces "$dry")
      if kubectl apply --dry-run=server -f "$dry" >"$work/dry.out" 2>&1; then
        sed 's/^/    /' "$work/dry.out"
        note "$base: $(grep -c '^kind:' "$dry") objects accepted by the apiserver (dry run)"
      else
        cat "$work/dry.out" >&2
        fail "kubectl apply --dry-run=server rejected $base"
      fi
    done
    for ns in "${created_namespaces[@]}"; do
      delete_namespace "$ns" || fail "could not delete namespace $ns created for the dry run"
    done
    created_namespaces=()
  fi
else
  step "server-side dry run: skipped (KUBECONFIG is not set)"
fi

# ---------------------------------------------------------------------------------------
echo
if [ "${#failures[@]}" -gt 0 ]; then
  printf 'check.sh: %d check(s) FAILED:\n' "${#failures[@]}" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "check.sh: all deploy/ checks passed"
