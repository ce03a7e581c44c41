#!/usr/bin/env bash
# Extract the CRDs the tests install, from the Go module zips, once, and print their directory.
#
#   crds="$(tools/envoy-gateway/crds.sh | tail -1)"   # $crds/gateway-api/*.yaml, $crds/envoy-gateway/*.yaml
#
# gateway-api/: the Standard channel of the sigs.k8s.io/gateway-api release that the pinned Envoy Gateway
# requires (go.mod next to this script), from the module's config/crd/standard/.
# envoy-gateway/: Envoy Gateway's own CRDs (BackendTrafficPolicy, ClientTrafficPolicy, ...) from its Helm chart.
# Both zips come through the Go module proxy and are checked against go.sum by `go mod download`.
# Progress goes to stderr; stdout carries only the directory (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
required() {
  awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) {print $(i+1); exit}}' "$here/go.mod"
}
eg_version="$(required github.com/envoyproxy/gateway)"
gwapi_version="$(required sigs.k8s.io/gateway-api)"
if [[ -z "$eg_version" || -z "$gwapi_version" ]]; then
  echo "crds.sh: go.mod in $here lacks the envoyproxy/gateway or sigs.k8s.io/gateway-api requirement" >&2
  exit 1
fi

cache="${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}"
dir="$cache/envoy-gateway/$eg_version/crds-gateway-api-$gwapi_version"
if [[ -f "$dir/.complete" ]]; then
  echo "$dir"
  exit 0
fi
command -v go >/dev/null || { echo "crds.sh: go not found on PATH" >&2; exit 1; }
command -v unzip >/dev/null || { echo "crds.sh: unzip not found; apt-get install unzip" >&2; exit 1; }

zip_of() {
  local zip
  zip="$(cd "$here" && go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$zip" ]] || { echo "crds.sh: could not download $1@$2" >&2; exit 1; }
  echo "$zip"
}

# The folders may not exist yet on a fresh machine (the Envoy Gateway build, which would make them, is separate).
mkdir -p "$(dirname "$dir")"
tmp="$(mktemp -d "$(dirname "$dir")/.crds.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
unzip -q -j "$(zip_of sigs.k8s.io/gateway-api "$gwapi_version")" \
  "sigs.k8s.io/gateway-api@$gwapi_version/config/crd/standard/gateway.networking.k8s.io_*.yaml" -d "$tmp/gateway-api"
unzip -q -j "$(zip_of github.com/envoyproxy/gateway "$eg_version")" \
  "github.com/envoyproxy/gateway@$eg_version/charts/gateway-helm/charts/crds/crds/generated/*.yaml" -d "$tmp/envoy-gateway"
touch "$tmp/.complete"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "crds.sh: Gateway API $gwapi_version (standard channel) and Envoy Gateway $eg_version CRDs in $dir" >&2
echo "$dir"
