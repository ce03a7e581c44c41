#!/usr/bin/env bash
# Build the pinned Traefik release once and print the binary's path.
#
#   traefik="$(bash tools/traefik/build.sh | tail -1)"   # build if needed, print the path
#   bash tools/traefik/build.sh --print-path             # print the path only, build nothing
#
# The version is the `github.com/traefik/traefik/v3` requirement in go.mod next to this script (the only
# place it is pinned). The binary goes to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/traefik/<version>-<hash>/traefik
# where <hash> covers go.mod, go.sum, the stand-ins and $recipe below, so a bump or a change to the stand-ins
# builds anew. It builds Traefik's own main package, CGO off, the version stamped into pkg/version the way
# Traefik's release build does. What every build script shares (cache, lock, the replace-directive check,
# atomic install) is in tools/go-build.sh.
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
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
mod=github.com/traefik/traefik/v3
# Bump when the build steps below change in a way that changes the binary.
recipe=1
version="$(go_pinned "$here/go.mod" "$mod")"
hash="$(cd "$here" && { echo "recipe=$recipe"; find go.mod go.sum ext _overlay -type f | LC_ALL=C sort | xargs cat; } | sha256sum | cut -c1-10)"
go_build_begin traefik "$version-$hash" "$@"
# The go-http-auth fork is replaced on purpose (see above).
go_check_directives "$mod" "$version" github.com/abbot/go-http-auth

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
grep -qx "Version: *${version#v}" <<<"$got" || go_build_fail "built binary reports '$got', expected version ${version#v}"
go_build_install "traefik ${version#v}"
