#!/usr/bin/env bash
# Build the pinned ghz (the benchmark's gRPC load generator) once and print the binary's path.
#
#   ghz="$(bash tools/ghz/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/ghz/build.sh --print-path         # print the path only, build nothing
#
# The version is the `github.com/bojand/ghz` requirement in go.mod next to this script (the only place it
# is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/ghz/<version>/ghz
# The build follows ghz's goreleaser: CGO off, the version stamped into main.version. What every build script
# shares (cache, lock, the replace-directive check, atomic install) is in tools/go-build.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
mod=github.com/bojand/ghz
version="$(go_pinned "$here/go.mod" "$mod")"
go_build_begin ghz "$version" "$@"
go_check_directives "$mod" "$version"

CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${version#v}" -o "$scratch/ghz" "$mod/cmd/ghz"

got="$("$scratch/ghz" --version 2>&1)"
[[ "$got" == "${version#v}" ]] || go_build_fail "built binary reports '$got', expected ${version#v}"
go_build_install "ghz $got"
