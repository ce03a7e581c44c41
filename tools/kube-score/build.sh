#!/usr/bin/env bash
# Build the pinned kube-score (KUBE_SCORE_VERSION in tools/versions.sh) once from its Go module and print the
# binary's path (last stdout line). kube-score's go.mod has no replace directives, so `go install module@version`
# builds exactly the release's dependency graph; no wrapper module is needed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../versions.sh"
dir="$ENVOY_THANOS_CACHE/kube-score/$KUBE_SCORE_VERSION"
out="$dir/kube-score"
if [[ -x "$out" ]]; then
  echo "$out"
  exit 0
fi
command -v go >/dev/null || { echo "kube-score/build.sh: go not found on PATH" >&2; exit 1; }
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [[ ! -x "$out" ]]; then
  start=$SECONDS
  echo "kube-score/build.sh: building kube-score $KUBE_SCORE_VERSION into $dir ($(go version))" >&2
  GOBIN="$dir.tmp" CGO_ENABLED=0 go install -trimpath "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION" >&2
  mv "$dir.tmp/kube-score" "$out"
  rmdir "$dir.tmp"
  echo "kube-score/build.sh: built in $((SECONDS - start))s" >&2
fi
echo "$out"
