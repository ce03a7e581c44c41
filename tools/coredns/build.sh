#!/usr/bin/env bash
# Build the pinned CoreDNS once and print the binary's path.
#
#   coredns="$(bash tools/coredns/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/coredns/build.sh --print-path             # print the path only, build nothing
#
# The version is the `github.com/coredns/coredns` requirement in go.mod next to this script (the only
# place it is pinned); main.go here is CoreDNS's own main with the plugins the tests use. The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/coredns/<version>-<hash>/coredns
# where <hash> covers main.go, go.mod and go.sum, so a bump or another plugin set builds anew.
# The build follows CoreDNS' Makefile: CGO off, -ldflags "-s -w", the commit stamped into coremain.GitCommit.
# What every build script shares (cache, lock, the replace-directive check, atomic install) is in tools/go-build.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
mod=github.com/coredns/coredns
version="$(go_pinned "$here/go.mod" "$mod")"
hash="$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -c1-10)"
go_build_begin coredns "$version-$hash" "$@"
go_check_directives "$mod" "$version"

CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-s -w -X $mod/coremain.GitCommit=$version" -o "$scratch/coredns" .

got="$("$scratch/coredns" -version 2>&1)"
got="${got%%$'\n'*}" # the first line; `| head -1` could end coredns with SIGPIPE, and pipefail the script
[[ "$got" == "CoreDNS-${version#v}" ]] || go_build_fail "built binary reports '$got', expected CoreDNS-${version#v}"
go_build_install "$got"
