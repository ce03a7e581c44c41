#!/usr/bin/env bash
# Build the pinned Thanos release once and print the binary's path.
#
#   thanos="$(tools/thanos/build.sh | tail -1)"
#
# The version is the `github.com/thanos-io/thanos` requirement in go.mod next
# to this script (the only place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/thanos/<version>/thanos
# If it is already there the script only prints the path (no Go needed).
# Otherwise it builds with the Go toolchain on PATH (module downloads through
# the default GOPROXY), the way Thanos' .promu.yml does: tags netgo,slicelabels,
# CGO off, version stamped into github.com/prometheus/common/version.
# Progress goes to stderr; stdout carries only the path (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod=github.com/thanos-io/thanos

version="$(awk -v m="$mod" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) {print $(i+1); exit}}' "$here/go.mod")"
if [[ -z "$version" ]]; then
  echo "build.sh: no '$mod vX.Y.Z' requirement in $here/go.mod" >&2
  exit 1
fi

cache="${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}"
dir="$cache/thanos/$version"
out="$dir/thanos"

if [[ -x "$out" ]]; then
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
echo "build.sh: building thanos $version into $out ($(go version))" >&2

# Thanos' own go.mod has replace directives that a dependent module does not
# inherit; go.mod here must repeat them or the build silently differs from the
# release. Compare them (local-path replacements excluded).
replaces() {
  go mod edit -print "$1" | awk '
    /^replace[ \t]*\(/ {blk = 1; next}
    blk && /^\)/ {blk = 0; next}
    /^replace[ \t]/ {sub(/^replace[ \t]+/, ""); print; next}
    blk {print}' |
    sed -e 's#//.*##' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' |
    awk 'NF && $0 !~ /=> (\.\.?\/|\/)/' | sort
}
upstream_mod="$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$upstream_mod" || ! -f "$upstream_mod" ]]; then
  echo "build.sh: could not download $mod@$version" >&2
  exit 1
fi
if ! diff <(replaces "$upstream_mod") <(replaces go.mod) >&2; then
  echo "build.sh: replace directives in $here/go.mod differ from $mod@$version's go.mod (< upstream, > ours); copy them, then run 'go mod tidy' there" >&2
  exit 1
fi

tmp="$(mktemp "$dir/.thanos.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

pv=github.com/prometheus/common/version
ldflags="-X $pv.Version=${version#v} -X $pv.Branch=module -X $pv.Revision=$mod@$version"
ldflags+=" -X $pv.BuildUser=envoy-thanos -X $pv.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"

CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -tags netgo,slicelabels -ldflags "$ldflags" -o "$tmp" "$mod/cmd/thanos"

got="$("$tmp" --version 2>&1 | head -1)"
if [[ "$got" != *"version ${version#v} "* ]]; then
  echo "build.sh: built binary reports '$got', expected version ${version#v}" >&2
  exit 1
fi
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "build.sh: $got; built in $((SECONDS - start))s" >&2
echo "$out"
