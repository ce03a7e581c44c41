#!/usr/bin/env bash
# Build the pinned kube-score (KUBE_SCORE_VERSION in tools/versions.sh) once from its Go module and print the
# binary's path (last stdout line); with --print-path, print the path only. kube-score's go.mod has no replace
# directives, so `go install module@version` builds exactly the release's dependency graph (it refuses a module
# that has some); no wrapper module is needed. The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/kube-score/<version>/kube-score
# What every build script shares (cache, lock, atomic install) is in tools/go-build.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/versions.sh
. "$here/../versions.sh"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
go_build_begin kube-score "$KUBE_SCORE_VERSION" "$@"
GOBIN="$scratch" CGO_ENABLED=0 go install -trimpath "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" >&2
go_build_install "kube-score $KUBE_SCORE_VERSION"
