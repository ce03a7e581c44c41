#!/usr/bin/env bash
# Build the pinned Thanos release once and print the binary's path.
#
#   thanos="$(bash tools/thanos/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/thanos/build.sh --print-path            # print the path only, build nothing
#
# The version is the `github.com/thanos-io/thanos` requirement in go.mod next
# to this script (the only place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/thanos/<version>/thanos
# The build follows Thanos' .promu.yml: tags netgo,slicelabels, CGO off, the version stamped into
# github.com/prometheus/common/version. Thanos' own go.mod has replace directives, which go.mod here repeats.
# What every build script shares (cache, lock, the replace-directive check, atomic install) is in tools/go-build.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
mod=github.com/thanos-io/thanos
version="$(go_pinned "$here/go.mod" "$mod")"
go_build_begin thanos "$version" "$@"
go_check_directives "$mod" "$version"

pv=github.com/prometheus/common/version
ldflags="-X $pv.Version=${version#v} -X $pv.Branch=module -X $pv.Revision=$mod@$version"
ldflags+=" -X $pv.BuildUser=envoy-thanos -X $pv.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -tags netgo,slicelabels -ldflags "$ldflags" -o "$scratch/thanos" "$mod/cmd/thanos"

got="$("$scratch/thanos" --version 2>&1 | head -1)"
[[ "$got" == *"version ${version#v} "* ]] || go_build_fail "built binary reports '$got', expected version ${version#v}"
go_build_install "$got"
