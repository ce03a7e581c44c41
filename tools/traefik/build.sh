#!/usr/bin/env bash
# Build the pinned Traefik release once and print the binary's path.
#
#   traefik="$(bash tools/traefik/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/traefik/build.sh --print-path             # print the path only, build nothing
#
# The version is the `github.com/traefik/traefik/v3` requirement in go.mod next to this script (the only
# place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/traefik/<version>-<hash>/traefik
# where <hash> covers everything here, so a bump or a change to the stand-ins builds anew. If it is already
# there the script only prints the path (no Go needed). Otherwise it builds Traefik's own main package with
# the Go toolchain on PATH (module downloads through the default GOPROXY), CGO off, the version stamped into
# pkg/version the way Traefik's release build does.
#
# Three modules of Traefik's build cannot be had from the module proxy; each stand-in is as small as the
# build allows and says why in its own comment:
#   - github.com/traefik/traefik/dynamic/ext, a nested module of Traefik's repository (module zips leave
#     nested modules out): ./ext, through a replace in go.mod.
#   - github.com/containous/go-http-auth, Traefik's fork of github.com/abbot/go-http-auth: the original's
#     last release v0.4.0 plus _overlay/go_http_auth_traefik.go (the two functions only the fork has).
#   - Fourteen DNS provider SDK modules that lego's generated DNS-01 provider factory imports: that one file is
#     replaced by _overlay/lego/zz_gen_dns_providers.go (no DNS-01 providers; the tests use no ACME).
# The last two are applied to copies of those modules in a scratch folder (the module cache is read-only
# and `go build -overlay` refuses files in it). Nothing of Traefik itself is changed.
# Progress goes to stderr; stdout carries only the path (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod=github.com/traefik/traefik/v3

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
hash="$(cd "$here" && find build.sh go.mod go.sum ext _overlay -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-10)"
cache="${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}"
dir="$cache/traefik/$version-$hash"
out="$dir/traefik"

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
echo "build.sh: building traefik $version into $out ($(go version))" >&2

# A dependent module does not inherit Traefik's replace and exclude directives; go.mod here repeats them
# (local-path replacements and the go-http-auth fork, see above, excepted) or the build silently differs
# from the release.
directives() {
  go mod edit -json "$1" | node -e '
    const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const v = (x) => x.Path + (x.Version ? " " + x.Version : "");
    for (const r of m.Replace ?? [])
      if (!r.New.Path.startsWith(".") && r.Old.Path !== "github.com/abbot/go-http-auth")
        console.log("replace " + v(r.Old) + " => " + v(r.New));
    for (const e of m.Exclude ?? []) console.log("exclude " + v(e));' | sort
}
upstream_mod="$(go mod download -json "$mod@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$upstream_mod" || ! -f "$upstream_mod" ]]; then
  echo "build.sh: could not download $mod@$version" >&2
  exit 1
fi
if ! diff <(directives "$upstream_mod") <(directives go.mod) >&2; then
  echo "build.sh: replace/exclude directives in $here/go.mod differ from $mod@$version's go.mod (< upstream, > ours); copy them, then run 'go mod tidy -e' there" >&2
  exit 1
fi

scratch="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
cp -r go.mod go.sum ext "$scratch/"
# The module copies the stand-ins are applied to (see above), as go.mod here pins them.
go mod download github.com/go-acme/lego/v5 github.com/abbot/go-http-auth
cp -r "$(go list -m -f '{{.Dir}}' github.com/go-acme/lego/v5)" "$scratch/lego"
cp -r "$(go list -m -f '{{.Dir}}' github.com/abbot/go-http-auth)" "$scratch/go-http-auth"
chmod -R u+w "$scratch/lego" "$scratch/go-http-auth"
cp _overlay/lego/zz_gen_dns_providers.go "$scratch/lego/providers/dns/zz_gen_dns_providers.go"
cp _overlay/go_http_auth_traefik.go "$scratch/go-http-auth/"
# v0.4.0 predates modules; a local replacement needs a go.mod (its imports resolve through ours).
printf 'module github.com/abbot/go-http-auth\n\ngo 1.16\n' > "$scratch/go-http-auth/go.mod"

cd "$scratch"
go mod edit -replace github.com/go-acme/lego/v5=./lego -replace github.com/abbot/go-http-auth=./go-http-auth
pv=$mod/pkg/version
CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false \
  -ldflags "-s -w -X $pv.Version=${version#v} -X $pv.BuildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -o traefik "$mod/cmd/traefik"

got="$(./traefik version 2>&1)"
if ! grep -qx "Version: *${version#v}" <<<"$got"; then
  echo "build.sh: built binary reports '$got', expected version ${version#v}" >&2
  exit 1
fi
chmod 0755 traefik
mv -f traefik "$out"
echo "build.sh: traefik ${version#v}; built in $((SECONDS - start))s" >&2
echo "$out"
