#!/usr/bin/env bash
# Local Kubernetes control plane for the end-to-end tests and CI:
# etcd 3.4 (Debian's etcd-server) + kube-apiserver 1.20.2, built once from
# Debian's `kubernetes` source package and cached outside the repository.
#
# There is no scheduler, kubelet or controller-manager: Pods stay Pending,
# namespaces are never finalized, nothing is garbage-collected. Admission
# (mutating/validating webhooks, server-side dry-run) runs in full, which is
# what the tests need.
#
# Usage: tests/e2e/control-plane.sh install|up|down|restart|env|status|logs
#
#   install  install the Debian packages and build/cache kube-apiserver
#   up       start etcd + kube-apiserver (runs install if needed), write a
#            kubeconfig, apply the CRD fixtures and wait until Established
#   down     stop both processes and remove the state directory
#   restart  stop kube-apiserver only and start it again on the same port with
#            the same etcd (its data kept): clients see the apiserver go away
#            and come back. VTW_APISERVER_DOWN_SECS (0) keeps it down that long.
#   env      print `export` lines:  eval "$(tests/e2e/control-plane.sh env)"
#   status   say whether the control plane is up (exit 0) or not (exit 1)
#   logs     tail of the etcd and kube-apiserver logs (VTW_LOG_LINES, 40)
#
# Environment:
#   VTW_CACHE_DIR   build cache (default ~/.cache/vespa-tls-webhook); the
#                   binary lives in $VTW_CACHE_DIR/kube-apiserver-1.20.2/
#   VTW_STATE_DIR   runtime state: pid files, logs, certs, kubeconfig
#                   (default ${TMPDIR:-/tmp}/vespa-tls-webhook-control-plane)
#   VTW_UP_TIMEOUT  seconds to wait for etcd / apiserver readiness (120)
#   VTW_KEEP_BUILD  set to 1 to keep the kubernetes source tree after a build
#   VTW_APISERVER_PROFILING  set to 1 to serve kube-apiserver's /debug/pprof
#                   (off by default; docs/performance.md profiles what a webhook's
#                   patch costs the apiserver with it)
#   VTW_APISERVER_APF  0 to start kube-apiserver without API Priority and
#                   Fairness (1, the apiserver's default). 1.20's APF catches its
#                   sample-and-watermark histograms up every 10 s, ~100 ms of a
#                   vCPU that stalls requests (kubernetes#94146, #97685; replaced
#                   by timing histograms in 1.25): scripts/bench --apiserver
#                   turns it off so that stall is not read as a webhook's cost
#   VTW_APISERVER_EXTRA_ARGS  more kube-apiserver flags, split on spaces (for
#                   experiments, e.g. an audit log: docs/performance.md)
set -euo pipefail

K8S_VERSION=1.20.2
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FIXTURES_DIR="$SCRIPT_DIR/fixtures"
CACHE_DIR=${VTW_CACHE_DIR:-${HOME:-/root}/.cache/vespa-tls-webhook}
APISERVER_DIR="$CACHE_DIR/kube-apiserver-$K8S_VERSION"
APISERVER_BIN="$APISERVER_DIR/kube-apiserver"
STATE_DIR=${VTW_STATE_DIR:-${TMPDIR:-/tmp}/vespa-tls-webhook-control-plane}
STATE_MARKER="$STATE_DIR/.vespa-tls-webhook-control-plane"
case ${VTW_APISERVER_PROFILING:-0} in
  0) APISERVER_PROFILING=false ;;
  1) APISERVER_PROFILING=true ;;
  *) printf '[control-plane] ERROR: VTW_APISERVER_PROFILING must be 0 or 1, not %s\n' "'$VTW_APISERVER_PROFILING'" >&2; exit 2 ;;
esac
case ${VTW_APISERVER_APF:-1} in
  0) APISERVER_APF=false ;;
  1) APISERVER_APF=true ;;
  *) printf '[control-plane] ERROR: VTW_APISERVER_APF must be 0 or 1, not %s\n' "'$VTW_APISERVER_APF'" >&2; exit 2 ;;
esac
read -r -a APISERVER_EXTRA_ARGS <<<"${VTW_APISERVER_EXTRA_ARGS:-}"
UP_TIMEOUT=${VTW_UP_TIMEOUT:-120}
CRDS=(vespasets.k8s.ai.vespa issuers.cert-manager.io clusterissuers.cert-manager.io certificates.cert-manager.io)

# Packages needed to run the control plane, and the extra ones to build it.
RUNTIME_PKGS=(etcd-server openssl jq curl)
BUILD_PKGS=(golang-go golang-github-modern-go-reflect2-dev rsync dpkg-dev make)
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { printf '[control-plane] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $* (not root and sudo is not installed)"
  fi
}

# ---------------------------------------------------------------- install ---

pkg_installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

APT_UPDATED=0
apt_update_once() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root apt-get update -qq || die "apt-get update failed"
    APT_UPDATED=1
  fi
}

apt_install() {
  local missing=() p
  for p in "$@"; do pkg_installed "$p" || missing+=("$p"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  apt_update_once
  log "apt-get install ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed for: ${missing[*]}"
  # Debian's etcd-server ships a service; make sure no system etcd squats on
  # 2379 (normally policy-rc.d / no init system already prevents the start).
}

# Add a deb-src entry for bookworm main, mirroring the deb entry in use.
ensure_deb_src() {
  if [[ -n $(apt-cache showsrc kubernetes 2>/dev/null | grep -m1 '^Version:' || true) ]]; then
    return 0
  fi
  local uri="" keyring=/usr/share/keyrings/debian-archive-keyring.gpg f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # First stanza of type deb with a bookworm suite.
    uri=$(awk 'BEGIN{RS=""; FS="\n"}
      /(^|\n)Types:[^\n]*deb([ \t]|$)/ && /(^|\n)Suites:[^\n]*bookworm([ \t]|\n|$)/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); print u[1]; exit } }' "$f")
    if [[ -n $uri ]]; then
      local k
      k=$(awk 'BEGIN{RS=""; FS="\n"} /Suites:[^\n]*bookworm/ { for (i = 1; i <= NF; i++) if ($i ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", $i); print $i; exit } }' "$f")
      [[ -n $k && -f $k ]] && keyring=$k
      break
    fi
  done
  if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [[ -n $uri ]] || uri=http://deb.debian.org/debian
  log "adding deb-src entry for bookworm main ($uri)"
  as_root tee /etc/apt/sources.list.d/vespa-tls-webhook-src.sources >/dev/null <<EOF
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: $keyring
EOF
  APT_UPDATED=0
  apt_update_once
  [[ -n $(apt-cache showsrc kubernetes 2>/dev/null | grep -m1 '^Version:' || true) ]] \
    || die "no source package 'kubernetes' after adding a deb-src entry (see /etc/apt/sources.list.d/vespa-tls-webhook-src.sources)"
}

apiserver_cached() {
  [[ -x $APISERVER_BIN ]] && "$APISERVER_BIN" --version 2>/dev/null | grep -q "v$K8S_VERSION"
}

build_apiserver() {
  local work="$CACHE_DIR/kube-apiserver-$K8S_VERSION-build" src started
  started=$(date +%s)
  apt_install "${BUILD_PKGS[@]}"
  ensure_deb_src
  [[ -d $REFLECT2_SRC ]] || die "$REFLECT2_SRC missing (package golang-github-modern-go-reflect2-dev)"

  rm -rf "$work"
  mkdir -p "$work" "$work/home"
  log "fetching Debian source package 'kubernetes' into $work"
  (cd "$work" && apt-get source -qq kubernetes >"$work/apt-source.log" 2>&1) \
    || { tail -n 20 "$work/apt-source.log" >&2; die "apt-get source kubernetes failed"; }
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
  [[ -n $src && -d $src/vendor ]] || die "unexpected source layout in $work (no kubernetes-*/vendor)"
  grep -q "tag: v$K8S_VERSION'" "$src/hack/lib/version.sh" \
    || die "source package in $src is not Kubernetes v$K8S_VERSION"

  # The vendored reflect2 v1.0.1 makes the apiserver SIGSEGV (mapiterinit)
  # under Go >= 1.18; Debian's 1.0.2 works.
  log "replacing vendor/github.com/modern-go/reflect2 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
  rm -rf "$src/vendor/github.com/modern-go/reflect2"
  rsync -a --exclude go.mod --exclude go.sum "$REFLECT2_SRC/" "$src/vendor/github.com/modern-go/reflect2/"

  mkdir -p "$src/.go/src/k8s.io"
  [[ -L $src/.go/src/k8s.io/kubernetes ]] || ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"

  log "building kube-apiserver v$K8S_VERSION with $(go version | awk '{print $3}') (takes ~6 min on 2 cores; log: $work/build.log)"
  if ! (cd "$src" && env -u GOFLAGS -u GOBIN GOPATH="$src/.go" GO111MODULE=off CGO_ENABLED=0 \
        HOME="$work/home" nice -n 10 make WHAT=cmd/kube-apiserver >"$work/build.log" 2>&1); then
    tail -n 40 "$work/build.log" >&2
    die "kube-apiserver build failed (full log: $work/build.log)"
  fi
  local out="$src/_output/bin/kube-apiserver"
  [[ -x $out ]] || die "build finished but $out is missing (log: $work/build.log)"
  "$out" --version | grep -q "v$K8S_VERSION" || die "built binary does not report v$K8S_VERSION: $("$out" --version 2>&1)"
  mkdir -p "$APISERVER_DIR"
  cp "$out" "$APISERVER_BIN.tmp.$$"
  mv -f "$APISERVER_BIN.tmp.$$" "$APISERVER_BIN"
  cp "$work/build.log" "$APISERVER_DIR/build.log"
  if [[ ${VTW_KEEP_BUILD:-0} != 1 ]]; then
    rm -rf "$work"
  fi
  log "kube-apiserver cached at $APISERVER_BIN (build took $(($(date +%s) - started))s)"
}

runtime_ready() {
  command -v etcd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 \
    && command -v curl >/dev/null 2>&1 && command -v jq >/dev/null 2>&1 \
    && command -v kubectl >/dev/null 2>&1 && command -v setsid >/dev/null 2>&1 \
    && apiserver_cached
}

cmd_install() {
  mkdir -p "$CACHE_DIR"
  # One build at a time per cache directory.
  exec 9>"$CACHE_DIR/.install.lock"
  flock 9 || die "could not lock $CACHE_DIR/.install.lock"
  apt_install "${RUNTIME_PKGS[@]}"
  command -v etcd >/dev/null 2>&1 || die "etcd not on PATH after installing etcd-server"
  command -v kubectl >/dev/null 2>&1 || die "kubectl not found on PATH (expected /usr/bin/kubectl)"
  if apiserver_cached; then
    log "kube-apiserver v$K8S_VERSION already cached: $APISERVER_BIN"
  else
    [[ -e $APISERVER_BIN ]] && log "cached $APISERVER_BIN does not run --version; rebuilding"
    build_apiserver
  fi
  exec 9>&-
  log "install complete: etcd $(etcd --version 2>/dev/null | awk '/etcd Version/ {print $3}'), $("$APISERVER_BIN" --version)"
}

# --------------------------------------------------------------------- up ---

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A free TCP port on 127.0.0.1 below the ephemeral range, not in "$@".
free_port() {
  local p _ t taken
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    taken=0
    for t in "$@"; do [[ $p == "$t" ]] && taken=1; done
    [[ $taken == 0 ]] || continue
    if command -v ss >/dev/null 2>&1; then
      [[ -z $(ss -Hltn "sport = :$p" 2>/dev/null) ]] || continue
    fi
    port_in_use "$p" && continue
    echo "$p"
    return 0
  done
  die "could not find a free port on 127.0.0.1"
}

# Start "$@" detached (own session, survives this script), pid into $1.
start_detached() {
  local pidfile=$1 logfile=$2
  shift 2
  # bash writes its own pid, then execs: the pid file holds the real pid.
  # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null &
  local _
  for _ in $(seq 1 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "could not start $1 (log: $logfile)"
}

# pid from $1 if that process is alive and is the expected binary $2.
live_pid() {
  local pidfile=$1 name=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name" || return 1
  echo "$pid"
}

apiserver_url() { echo "https://127.0.0.1:$(<"$STATE_DIR/apiserver.port")"; }

readyz() {
  [[ -s $STATE_DIR/apiserver.port && -s $STATE_DIR/pki/ca.crt && -s $STATE_DIR/admin.token ]] || return 1
  curl -fsS --max-time 5 --cacert "$STATE_DIR/pki/ca.crt" \
    -H "Authorization: Bearer $(<"$STATE_DIR/admin.token")" \
    "$(apiserver_url)/readyz" 2>/dev/null | grep -qx ok
}

is_up() {
  live_pid "$STATE_DIR/etcd.pid" etcd >/dev/null && live_pid "$STATE_DIR/kube-apiserver.pid" kube-apiserver >/dev/null && readyz
}

make_pki() {
  local pki="$STATE_DIR/pki"
  mkdir -p "$pki"
  (
    cd "$pki"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=vespa-tls-webhook-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    cat >apiserver.ext <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 30 -extfile apiserver.ext
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$STATE_DIR/openssl.log" 2>&1 || { cat "$STATE_DIR/openssl.log" >&2; die "creating certificates with openssl failed"; }
  chmod 600 "$pki"/*.key
}

write_kubeconfig() {
  local url=$1 token=$2
  local ca_data
  ca_data=$(base64 -w0 <"$STATE_DIR/pki/ca.crt")
  umask 077
  cat >"$STATE_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: vespa-tls-webhook-e2e
  cluster:
    server: $url
    certificate-authority-data: $ca_data
users:
- name: admin
  user:
    token: $token
contexts:
- name: vespa-tls-webhook-e2e
  context:
    cluster: vespa-tls-webhook-e2e
    user: admin
    namespace: default
current-context: vespa-tls-webhook-e2e
EOF
}

apply_fixtures() {
  local kc="$STATE_DIR/kubeconfig" f
  for f in "$FIXTURES_DIR/vespaset-crd.yaml" "$FIXTURES_DIR/cert-manager-crds.yaml"; do
    [[ -f $f ]] || die "fixture missing: $f"
    kubectl --kubeconfig "$kc" apply -f "$f" >>"$STATE_DIR/fixtures.log" 2>&1 \
      || { cat "$STATE_DIR/fixtures.log" >&2; fail_up "kubectl apply -f $f failed"; }
  done
  kubectl --kubeconfig "$kc" wait --for condition=Established --timeout=60s "${CRDS[@]/#/crd/}" \
    >>"$STATE_DIR/fixtures.log" 2>&1 \
    || { cat "$STATE_DIR/fixtures.log" >&2; fail_up "CRDs did not become Established"; }
}

# A failed `up`: stop what it started, keep the state dir (logs) for a look;
# the next `up` or `down` cleans it.
fail_up() {
  stop_pid "$STATE_DIR/kube-apiserver.pid" kube-apiserver
  stop_pid "$STATE_DIR/etcd.pid" etcd
  log "logs kept in $STATE_DIR ($0 logs); run '$0 down' to remove them"
  die "$*"
}

wait_for() {
  local what=$1 logfile=$2 pidfile=$3 name=$4
  shift 4
  local deadline=$((SECONDS + UP_TIMEOUT))
  until "$@"; do
    if ! live_pid "$pidfile" "$name" >/dev/null; then
      log "$what exited; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      fail_up "$what failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "$what not ready after ${UP_TIMEOUT}s; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 || true
      fail_up "timed out waiting for $what"
    fi
    sleep 0.5
  done
}

etcd_healthy() {
  curl -fsS --max-time 3 "http://127.0.0.1:$(<"$STATE_DIR/etcd.port")/health" 2>/dev/null | grep -q '"health":"true"'
}

cmd_up() {
  if [[ -f $STATE_MARKER ]] && is_up; then
    log "already up and healthy at $(apiserver_url) (kubeconfig: $STATE_DIR/kubeconfig)"
    return 0
  fi
  runtime_ready || cmd_install
  if [[ -e $STATE_DIR ]]; then
    log "found a stale or unhealthy control plane in $STATE_DIR; cleaning it up"
    cmd_down
  fi
  local started=$SECONDS
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
  : >"$STATE_MARKER"

  local etcd_port etcd_peer_port api_port token
  etcd_port=$(free_port)
  etcd_peer_port=$(free_port "$etcd_port")
  api_port=$(free_port "$etcd_port" "$etcd_peer_port")
  echo "$etcd_port" >"$STATE_DIR/etcd.port"
  echo "$api_port" >"$STATE_DIR/apiserver.port"

  make_pki
  token=$(openssl rand -hex 32)
  (umask 077; echo "$token" >"$STATE_DIR/admin.token"
   echo "$token,admin,admin-uid,\"system:masters\"" >"$STATE_DIR/tokens.csv")

  log "starting etcd on 127.0.0.1:$etcd_port"
  start_detached "$STATE_DIR/etcd.pid" "$STATE_DIR/etcd.log" \
    etcd --name vtw-e2e --data-dir "$STATE_DIR/etcd-data" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" \
      --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
      --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
      --initial-cluster "vtw-e2e=http://127.0.0.1:$etcd_peer_port" \
      --initial-cluster-state new --logger zap --log-level warn
  wait_for etcd "$STATE_DIR/etcd.log" "$STATE_DIR/etcd.pid" etcd etcd_healthy

  start_apiserver "$api_port" "$etcd_port"
  wait_for kube-apiserver "$STATE_DIR/kube-apiserver.log" "$STATE_DIR/kube-apiserver.pid" kube-apiserver readyz

  write_kubeconfig "https://127.0.0.1:$api_port" "$token"
  apply_fixtures
  log "up in $((SECONDS - started))s: $(apiserver_url)"
  log "kubeconfig: $STATE_DIR/kubeconfig   (eval \"\$($0 env)\")"
}

# Start kube-apiserver on port $1 against etcd on port $2 (does not wait).
start_apiserver() {
  local api_port=$1 etcd_port=$2
  log "starting kube-apiserver v$K8S_VERSION on https://127.0.0.1:$api_port"
  local pki="$STATE_DIR/pki"
  # No proxy for the apiserver's own calls (webhooks on 127.0.0.1).
  start_detached "$STATE_DIR/kube-apiserver.pid" "$STATE_DIR/kube-apiserver.log" \
    env -u http_proxy -u https_proxy -u HTTP_PROXY -u HTTPS_PROXY NO_PROXY=127.0.0.1,localhost \
    "$APISERVER_BIN" \
      --bind-address=127.0.0.1 \
      --advertise-address=127.0.0.1 \
      --endpoint-reconciler-type=none \
      --secure-port="$api_port" \
      --insecure-port=0 \
      --cert-dir="$pki" \
      --tls-cert-file="$pki/apiserver.crt" \
      --tls-private-key-file="$pki/apiserver.key" \
      --client-ca-file="$pki/ca.crt" \
      --token-auth-file="$STATE_DIR/tokens.csv" \
      --authorization-mode=Node,RBAC \
      --service-account-key-file="$pki/sa.pub" \
      --service-account-signing-key-file="$pki/sa.key" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --disable-admission-plugins=ServiceAccount \
      --enable-admission-plugins=NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
      --service-cluster-ip-range=10.0.0.0/24 \
      --etcd-servers="http://127.0.0.1:$etcd_port" \
      --allow-privileged=true \
      --profiling="$APISERVER_PROFILING" \
      --enable-priority-and-fairness="$APISERVER_APF" \
      --v=1 ${APISERVER_EXTRA_ARGS[@]+"${APISERVER_EXTRA_ARGS[@]}"}
}

# ---------------------------------------------------------------- restart ---

cmd_restart() {
  if [[ ! -f $STATE_MARKER ]] || ! live_pid "$STATE_DIR/etcd.pid" etcd >/dev/null; then
    die "control plane is not up (run: $0 up)"
  fi
  local down=${VTW_APISERVER_DOWN_SECS:-0} started=$SECONDS
  [[ $down =~ ^[0-9]+$ ]] || die "VTW_APISERVER_DOWN_SECS must be whole seconds, not '$down'"
  stop_pid "$STATE_DIR/kube-apiserver.pid" kube-apiserver
  [[ -f $STATE_DIR/kube-apiserver.log ]] && mv -f "$STATE_DIR/kube-apiserver.log" "$STATE_DIR/kube-apiserver.log.1"
  if ((down > 0)); then
    log "kube-apiserver down for ${down}s"
    sleep "$down"
  fi
  start_apiserver "$(<"$STATE_DIR/apiserver.port")" "$(<"$STATE_DIR/etcd.port")"
  wait_for kube-apiserver "$STATE_DIR/kube-apiserver.log" "$STATE_DIR/kube-apiserver.pid" kube-apiserver readyz
  log "kube-apiserver restarted in $((SECONDS - started))s: $(apiserver_url)"
}

# ------------------------------------------------------------------- down ---

stop_pid() {
  local pidfile=$1 name=$2 pid _
  pid=$(live_pid "$pidfile" "$name") || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || return 0; sleep 0.1; done
}

cmd_down() {
  if [[ ! -e $STATE_DIR ]]; then
    log "not running (no $STATE_DIR)"
    return 0
  fi
  if [[ ! -f $STATE_MARKER ]]; then
    die "$STATE_DIR exists but was not made by this script (no $(basename "$STATE_MARKER")); not removing it"
  fi
  stop_pid "$STATE_DIR/kube-apiserver.pid" kube-apiserver
  stop_pid "$STATE_DIR/etcd.pid" etcd
  rm -rf "$STATE_DIR"
  log "down; removed $STATE_DIR"
}

# ------------------------------------------------------------ env/status ---

cmd_env() {
  [[ -f $STATE_MARKER && -s $STATE_DIR/apiserver.port && -s $STATE_DIR/kubeconfig ]] \
    || die "control plane is not up (run: $0 up)"
  local kc="$STATE_DIR/kubeconfig"
  printf 'export KUBECONFIG=%q\n' "$kc"
  printf 'export VTW_E2E_KUBECONFIG=%q\n' "$kc"
  printf 'export VTW_E2E_APISERVER=%q\n' "$(apiserver_url)"
  printf 'export VTW_E2E_STATE_DIR=%q\n' "$STATE_DIR"
}

cmd_status() {
  local epid apid
  epid=$(live_pid "$STATE_DIR/etcd.pid" etcd || echo "-")
  apid=$(live_pid "$STATE_DIR/kube-apiserver.pid" kube-apiserver || echo "-")
  echo "state dir:      $STATE_DIR"
  echo "kube-apiserver: $(apiserver_cached && echo "$APISERVER_BIN" || echo "not built (run: $0 install)")"
  echo "etcd pid:       $epid"
  echo "apiserver pid:  $apid"
  if [[ -f $STATE_MARKER ]] && is_up; then
    echo "apiserver:      $(apiserver_url) (readyz ok)"
    echo "kubeconfig:     $STATE_DIR/kubeconfig"
    echo "status:         up"
    return 0
  fi
  echo "status:         down"
  return 1
}

cmd_logs() {
  local n=${VTW_LOG_LINES:-40} f
  for f in etcd.log kube-apiserver.log; do
    echo "==> $STATE_DIR/$f <=="
    tail -n "$n" "$STATE_DIR/$f" 2>/dev/null || echo "(none)"
  done
}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

case "${1:-}" in
  install) cmd_install ;;
  up) cmd_up ;;
  down) cmd_down ;;
  restart) cmd_restart ;;
  env) cmd_env ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
