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
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
eg_version="$(go_pinned "$here/go.mod" github.com/envoyproxy/gateway)"
gwapi_version="$(go_pinned "$here/go.mod" sigs.k8s.io/gateway-api)"

dir="$go_build_cache/envoy-gateway/$eg_version/crds-gateway-api-$gwapi_version"
if [[ -f "$dir/.complete" ]]; then
  echo "$dir"
  exit 0
fi
command -v go >/dev/null || go_build_fail "go not found on PATH"
command -v unzip >/dev/null || go_build_fail "unzip not found; apt-get install unzip"

zip_of() {
  local zip
  zip="$(cd "$here" && go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -f "$zip" ]] || go_build_fail "could not download $1@$2"
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
go_build_say "Gateway API $gwapi_version (standard channel) and Envoy Gateway $eg_version CRDs in $dir"
echo "$dir"
