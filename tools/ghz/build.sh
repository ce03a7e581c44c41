#!/usr/bin/env bash
# Build the pinned ghz (the benchmark's gRPC load generator) once and print the binary's path.
#
#   ghz="$(bash tools/ghz/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/ghz/build.sh --print-path         # print the path only, build nothing
#
# The version is the `github.com/bojand/ghz` requirement in go.mod next to this script (the only place it
# is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/ghz/<version>/ghz
# If it is already there the script only prints the path (no Go needed). Otherwise it builds with the Go
# toolchain on PATH (module downloads through the default GOPROXY), as ghz's goreleaser does: CGO off,
# the version stamped into main.version.
# Progress goes to stderr; stdout carries only the path (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod=github.com/bojand/ghz

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
dir="$cache/ghz/$version"
out="$dir/ghz"

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
echo "build.sh: building ghz $version into $out ($(go version))" >&2

# A dependent module does not inherit ghz's replace directives; it has none today, and the build would
# silently differ from the release if it gained some.
upstream_mod="$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$upstream_mod" || ! -f "$upstream_mod" ]]; then
  echo "build.sh: could not download $mod@$version" >&2
  exit 1
fi
if [[ "$(go mod edit -json "$upstream_mod" | tr -d ' \n\t' | grep -o '"Replace":\[' || true)" != "" ]]; then
  echo "build.sh: $mod@$version's go.mod has replace directives; repeat them in $here/go.mod and teach this script to compare them" >&2
  exit 1
fi

tmp="$(mktemp "$dir/.ghz.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${version#v}" -o "$tmp" "$mod/cmd/ghz"

got="$("$tmp" --version 2>&1)"
if [[ "$got" != "${version#v}" ]]; then
  echo "build.sh: built binary reports '$got', expected ${version#v}" >&2
  exit 1
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "build.sh: ghz $got; built in $((SECONDS - start))s" >&2
echo "$out"
