#!/usr/bin/env bash
# Build the pinned Envoy Gateway release once and print the binary's path.
#
#   envoy_gateway="$(bash tools/envoy-gateway/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/envoy-gateway/build.sh --print-path                   # print the path only, build nothing
#
# The version is the `github.com/envoyproxy/gateway` requirement in go.mod next
# to this script (the only place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/envoy-gateway/<version>/envoy-gateway
# If it is already there the script only prints the path (no Go needed).
# Otherwise it builds with the Go toolchain on PATH (module downloads through
# the default GOPROXY), CGO off, version stamped as Envoy Gateway's release build does.
# Progress goes to stderr; stdout carries only the path (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod=github.com/envoyproxy/gateway
print_only=0
case "${1:-}" in
  "") ;;
  --print-path) print_only=1 ;;
  *) echo "usage: build.sh [--print-path]" >&2; exit 2 ;;
esac

version="$(awk -v m="$mod" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) {print $(i+1); exit}}' "$here/go.mod")"
if [[ -z "$version" ]]; then
  echo "build.sh: no '$mod vX.Y.Z' requirement in $here/go.mod" >&2
  exit 1
fi

cache="${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}"
dir="$cache/envoy-gateway/$version"
out="$dir/envoy-gateway"

if ((print_only)) || [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go not found on PATH" >&2; exit 1; }
mkdir -p "$dir"

# Serialise concurrent builders; the winner builds, the others reuse its result.
exec 9>"$dir/.lock"
flock 9
if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi

cd "$here"
start=$SECONDS
echo "build.sh: building envoy-gateway $version into $out ($(go version))" >&2

# A dependent module does not inherit replace directives; Envoy Gateway's go.mod must have none
# that go.mod here lacks, or the build silently differs from the release.
upstream_mod="$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$upstream_mod" || ! -f "$upstream_mod" ]]; then
  echo "build.sh: could not download $mod@$version" >&2
  exit 1
fi
if [[ "$(go mod edit -json "$upstream_mod" | sed -n 's/.*"Replace": \(.*\)/\1/p')" != "$(go mod edit -json go.mod | sed -n 's/.*"Replace": \(.*\)/\1/p')" ]]; then
  echo "build.sh: replace directives in $here/go.mod differ from $mod@$version's go.mod; copy them, then run 'go mod tidy' there" >&2
  exit 1
fi

tmp="$(mktemp "$dir/.envoy-gateway.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-X $mod/internal/cmd/version.envoyGatewayVersion=$version -X $mod/internal/cmd/version.gitCommitID=module" \
  -o "$tmp" "$mod/cmd/envoy-gateway"

got="$("$tmp" version 2>&1 | head -1)"
if [[ "$got" != *"$version"* ]]; then
  echo "build.sh: built binary reports '$got', expected version $version" >&2
  exit 1
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "build.sh: $got; built in $((SECONDS - start))s" >&2
echo "$out"
