#!/usr/bin/env bash
# Offline build of the Pulumi toolchain (CLI/engine, Node.js language host and
# the providers the project uses) from Go modules, via the Go module proxy only.
#
#   bin=$(tools/pulumi-offline/build.sh | tail -1)
#   PATH="$bin:$PATH" pulumi ...
#
# Versions come from package-lock.json (node_modules/@pulumi/<pkg> "version").
# Each npm version needs a wrapper module in wrappers/<component>/<npm version>/
# whose wrapper.env says which Go module version it builds; a bump without a
# wrapper fails. Output: ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/pulumi/<key>/bin
# where <key> encodes every built version plus a hash of the wrapper sources.
# Already built -> prints the dir at once. Builds go to a temp dir that is
# renamed into place, so an interrupted build leaves no partial cache entry.
#
# Env:
#   ENVOY_THANOS_CACHE            cache root (default $HOME/.cache/envoy-thanos)
#   PULUMI_OFFLINE_LOCKFILE       lock file to read (default <repo>/package-lock.json)
#   PULUMI_OFFLINE_ALLOW_MISSING  1 = build the components that have a wrapper and
#                                 skip those that do not (key says <name>-none)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
repo=$(cd "$here/../.." && pwd)
lockfile=${PULUMI_OFFLINE_LOCKFILE:-$repo/package-lock.json}
cache_root=${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/pulumi
allow_missing=${PULUMI_OFFLINE_ALLOW_MISSING:-0}
recipe=1 # bump when the build recipe below changes in a way that alters binaries

log() { echo "pulumi-offline: $*" >&2; }
die() { log "error: $*"; exit 1; }

# component  npm package         binary
components=(
  "cli             @pulumi/pulumi     pulumi"
  "language-nodejs @pulumi/pulumi     pulumi-language-nodejs"
  "kubernetes      @pulumi/kubernetes pulumi-resource-kubernetes"
  "tls             @pulumi/tls        pulumi-resource-tls"
  "random          @pulumi/random     pulumi-resource-random"
)

[[ -f $lockfile ]] || die "no lock file at $lockfile"

# Prints "<package> <version>" for each argument, read from the lock file.
npm_versions() {
  if command -v node >/dev/null 2>&1; then
    node -e '
      const l = require(process.argv[1]);
      for (const n of process.argv.slice(2)) {
        const p = (l.packages || {})["node_modules/" + n];
        console.log(n + " " + ((p && p.version) || ""));
      }' "$lockfile" "$@"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c '
import json, sys
pk = json.load(open(sys.argv[1])).get("packages", {})
for n in sys.argv[2:]:
    print(n, pk.get("node_modules/" + n, {}).get("version", ""))' "$lockfile" "$@"
  else
    die "need node or python3 to read $lockfile"
  fi
}

declare -A npm=()
while read -r pkg ver; do
  [[ -n $ver ]] || die "$pkg has no \"version\" under packages[\"node_modules/$pkg\"] in $lockfile"
  npm[$pkg]=$ver
done < <(npm_versions $(for row in "${components[@]}"; do read -r _ pkg _ <<<"$row"; echo "$pkg"; done | sort -u))

# Resolve each component to its wrapper directory.
declare -A wrapper=()
key_parts=()
missing=()
hash_input=$(mktemp)
trap 'rm -f "$hash_input"' EXIT
echo "recipe=$recipe" >"$hash_input"
for row in "${components[@]}"; do
  read -r comp pkg bin <<<"$row"
  ver=${npm[$pkg]:-}
  [[ -n $ver ]] || die "could not read the version of $pkg from $lockfile"
  dir=$here/wrappers/$comp/$ver
  if [[ ! -f $dir/wrapper.env ]]; then
    missing+=("$comp ($pkg $ver -> $bin): no wrapper at ${dir#"$repo"/}")
    key_parts+=("$comp-none")
    continue
  fi
  wrapper[$comp]=$dir
  key_parts+=("$(. "$dir/wrapper.env"; echo "$KEY")")
  (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sed "s#  \./#  $comp/#" >>"$hash_input"
  vendored=$(. "$dir/wrapper.env"; echo "${VENDORED:-}")
  if [[ -n $vendored ]]; then
    [[ -f $repo/$vendored/go.mod ]] || die "$comp: wrapper ${dir#"$repo"/} names vendored source $vendored, which has no go.mod"
    (cd "$repo/$vendored" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
      | sed "s#  \./#  $vendored/#" >>"$hash_input"
  fi
done
(cd "$here/embedgen" && sha256sum go.mod main.go | sed 's#  #  embedgen/#') >>"$hash_input"

if ((${#missing[@]})); then
  for m in "${missing[@]}"; do
    log "missing: $m"
    comp=${m%% *}
    if [[ -f $here/wrappers/$comp/UNAVAILABLE ]]; then
      sed 's/^/    /' "$here/wrappers/$comp/UNAVAILABLE" >&2
    fi
  done
  if [[ $allow_missing != 1 ]]; then
    die "cannot build the full toolchain (set PULUMI_OFFLINE_ALLOW_MISSING=1 to build the rest)"
  fi
  log "PULUMI_OFFLINE_ALLOW_MISSING=1: building only the components that have a wrapper"
fi

key=$(IFS=_; echo "${key_parts[*]}")_w$(sha256sum "$hash_input" | cut -c1-10)
dest=$cache_root/$key
bindir=$dest/bin

complete() {
  local comp
  for comp in "${!wrapper[@]}"; do
    [[ -x $bindir/$(. "${wrapper[$comp]}/wrapper.env"; echo "$BIN") ]] || return 1
  done
}

go_build_lock "$cache_root" "$bindir" complete
# Left over from interrupted builds (we hold the lock, so none is running).
rm -rf "$cache_root"/.build.* "$dest"
tmp=$(mktemp -d "$cache_root/.build.XXXXXX")
trap 'rm -f "$hash_input"; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/out/bin" "$tmp/src"

export GOFLAGS="-mod=readonly -buildvcs=false"
log "building $key with $(go version) (cold build: ~15 min on 2 cores)"
start=$SECONDS
for comp in cli language-nodejs kubernetes tls random; do
  [[ -n ${wrapper[$comp]:-} ]] || continue
  src=$tmp/src/$comp
  vendored=$(. "${wrapper[$comp]}/wrapper.env"; echo "${VENDORED:-}")
  # A vendored provider (third_party/) is its own Go module: build it in place of a wrapper module.
  cp -R "${vendored:+$repo/}${vendored:-${wrapper[$comp]}}" "$src"
  (
    set -euo pipefail
    cd "$src"
    . "${wrapper[$comp]}/wrapper.env"
    t0=$SECONDS
    if [[ -n ${VENDORED:-} && -n ${EMBED_SCHEMA:-} ]]; then
      go -C "$here/embedgen" run . -schema "$src/$EMBED_SCHEMA" -version "$EMBED_SCHEMA_VERSION" -out "$src/$EMBED_SCHEMA_OUT"
    elif [[ -n ${EMBED_MODULE:-} ]]; then
      go mod download "$EMBED_MODULE"
      moddir=$(go list -m -f '{{.Dir}}' "$EMBED_MODULE")
      [[ -d $moddir ]] || { echo "cannot locate $EMBED_MODULE in the module cache" >&2; exit 1; }
      if [[ -n ${EMBED_SCHEMA:-} ]]; then
        go -C "$here/embedgen" run . -schema "$moddir/$EMBED_SCHEMA" \
          -version "$EMBED_SCHEMA_VERSION" -out "$src/$EMBED_SCHEMA_OUT"
      fi
      if [[ -n ${EMBED_MINIFY:-} ]]; then
        go -C "$here/embedgen" run . -minify "$moddir/$EMBED_MINIFY" -out "$src/$EMBED_MINIFY_OUT"
      fi
    fi
    echo "pulumi-offline: go build $BIN ($KEY)" >&2
    go build -trimpath -ldflags "-s -w -X $LDFLAGS_X" -o "$tmp/out/bin/$BIN" "$PKG"
    echo "pulumi-offline: built $BIN in $((SECONDS - t0))s" >&2
  ) || die "building $comp failed (wrapper ${wrapper[$comp]#"$repo"/})"
done
{
  echo "key=$key"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "go=$(go version)"
  cat "$hash_input"
} >"$tmp/out/BUILDINFO"

mv -T "$tmp/out" "$dest"
log "done in $((SECONDS - start))s"
echo "$bindir"
