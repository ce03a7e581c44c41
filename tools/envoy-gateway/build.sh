#!/usr/bin/env bash
# Build the pinned Envoy Gateway release once and print the binary's path.
#
#   envoy_gateway="$(bash tools/envoy-gateway/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/envoy-gateway/build.sh --print-path                   # print the path only, build nothing
#
# The version is the `github.com/envoyproxy/gateway` requirement in go.mod next
# to this script (the only place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/envoy-gateway/<version>/envoy-gateway
# The build is CGO off, the version stamped as Envoy Gateway's release build does. What every build script
# shares (cache, lock, the replace-directive check, atomic install) is in tools/go-build.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
mod=github.com/envoyproxy/gateway
version="$(go_pinned "$here/go.mod" "$mod")"
go_build_begin envoy-gateway "$version" "$@"
go_check_directives "$mod" "$version"

CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-X $mod/internal/cmd/version.envoyGatewayVersion=$version -X $mod/internal/cmd/version.gitCommitID=module" \
  -o "$scratch/envoy-gateway" "$mod/cmd/envoy-gateway"

got="$("$scratch/envoy-gateway" version 2>&1 | head -1)"
[[ "$got" == *"$version"* ]] || go_build_fail "built binary reports '$got', expected version $version"
go_build_install "$got"
