#!/usr/bin/env bash
# Build the pinned Kubernetes control-plane binaries once and print their directory.
#
#   bin="$(bash tools/k8s/build.sh | tail -1)"     # build if needed, print the bin dir
#   bash tools/k8s/build.sh --print-dir            # print the bin dir only, build nothing
#
# Binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok, and the kubelet of the real node
# (test/e2e/real-node.test.ts; it shares Go's build cache with kube-apiserver, so it adds little to a cold build).
# Versions are pinned only in the wrapper modules next to this script:
#   etcd/go.mod        require go.etcd.io/etcd/server/v3 vX.Y.Z   (etcd's main package is that module's root)
#   kubernetes/go.mod  require k8s.io/kubernetes vX.Y.Z           (+ every staging module replaced with v0.Y.Z)
#   kwok/go.mod        require sigs.k8s.io/kwok vX.Y.Z            (cmd/kwok)
# The binaries go to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/k8s/<key>/bin/
# where <key> names the three versions plus a hash of the wrapper modules' go.mod/go.sum
# and of $recipe below, so a bump or a changed recipe builds into a new directory
# (old directories are left behind: remove them by hand).
# Binaries already there are not rebuilt. The builds are CGO off, the way the upstream release scripts do:
#   Kubernetes (hack/lib/golang.sh): -trimpath, -ldflags "-s -w" + version stamps,
#     tags selinux,notest,grpcnotrace;
#   etcd (build.sh): -trimpath;  kwok: plain build (its version is a constant).
# What every build script shares (cache, lock, atomic install) is in tools/go-build.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
# Bump when the build commands below change in a way that changes the binaries.
recipe=1

go_build_options --print-dir "$@"
k8s_version="$(go_pinned "$here/kubernetes/go.mod" k8s.io/kubernetes)"
etcd_version="$(go_pinned "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
kwok_version="$(go_pinned "$here/kwok/go.mod" sigs.k8s.io/kwok)"

# The hash covers what decides the build: go.mod lines without comments (in any order, so that
# editing a comment or regrouping requirements does not rebuild) and go.sum.
hash="$(
  {
    echo "recipe=$recipe"
    for m in etcd kubernetes kwok; do
      echo "== $m"
      sed -e 's#//.*##' -e 's/[[:space:]]\+/ /g' -e 's/^ //' -e 's/ $//' "$here/$m/go.mod" | awk 'NF' | LC_ALL=C sort
      cat "$here/$m/go.sum"
    done
  } | sha256sum | cut -c1-10
)"
key="kubernetes-$k8s_version-etcd-$etcd_version-kwok-$kwok_version-$hash"
dir="$go_build_cache/k8s/$key"
bin="$dir/bin"
names=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kwok)

all_present() {
  local n
  for n in "${names[@]}"; do [[ -x "$bin/$n" ]] || return 1; done
}
go_build_lock "$dir" "$bin" all_present
mkdir -p "$bin"

go_build_say "building into $bin ($(go version))"
total_start=$SECONDS

# The staging replaces in kubernetes/go.mod must list exactly upstream's staging modules,
# each at v0.<minor>.<patch> of the pinned Kubernetes version.
(
  cd "$here/kubernetes"
  upstream_mod="$(go_upstream_gomod k8s.io/kubernetes "$k8s_version")"
  staging="v0.${k8s_version#v1.}"
  want="$(go mod edit -json "$upstream_mod" |
    sed -n 's#^[[:space:]]*"Path": "\./staging/src/\(k8s\.io/[^"]*\)".*#\1#p' | sort)"
  have="$(go mod edit -json go.mod | tr -d ' \n\t' | grep -o '"Old":{"Path":"[^"]*"},"New":{"Path":"[^"]*","Version":"[^"]*"}' |
    sed 's#"Old":{"Path":"\([^"]*\)"},"New":{"Path":"\([^"]*\)","Version":"\([^"]*\)"}#\1 \2 \3#' |
    awk -v v="$staging" '$1 == $2 && $3 == v {print $1}' | sort)"
  if [[ -z "$want" ]] || ! diff <(echo "$want") <(echo "$have") >&2; then
    go_build_fail "kubernetes/go.mod must replace each staging module of k8s.io/kubernetes@$k8s_version (<) with itself at $staging (>)"
  fi
)

tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# build <name> <module dir> <version check substring> <go build args...>
build() {
  local name="$1" moddir="$2" expect="$3"
  shift 3
  if [[ -x "$bin/$name" ]]; then
    go_build_say "$name present"
    return
  fi
  local start=$SECONDS got
  go_build_say "building $name"
  (cd "$here/$moddir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false -o "$tmp/$name" "$@")
  got="$("$tmp/$name" --version 2>&1 | tr '\n' ' ')"
  if [[ "$got" != *"$expect"* ]]; then
    go_build_fail "built $name reports '$got', expected '$expect'"
  fi
  chmod 0755 "$tmp/$name"
  mv -f "$tmp/$name" "$bin/$name"
  go_build_say "$name built in $((SECONDS - start))s ($(du -h "$bin/$name" | cut -f1))"
}

build etcd etcd "etcd Version: ${etcd_version#v}" go.etcd.io/etcd/server/v3

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
kldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  kldflags+=" -X $p.gitCommit= -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
for n in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  build "$n" kubernetes "Kubernetes $k8s_version" \
    -tags selinux,notest,grpcnotrace -ldflags "all=$kldflags" "k8s.io/kubernetes/cmd/$n"
done

build kwok kwok "${kwok_version#v}" sigs.k8s.io/kwok/cmd/kwok

go_build_say "all binaries in $bin ($((SECONDS - total_start))s)"
echo "$bin"
