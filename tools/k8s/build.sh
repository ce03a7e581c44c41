#!/usr/bin/env bash
# Build the pinned Kubernetes control-plane binaries once and print their directory.
#
#   bin="$(bash tools/k8s/build.sh | tail -1)"     # build if needed, print the bin dir
#   bash tools/k8s/build.sh --print-dir            # print the bin dir only, build nothing
#
# Binaries: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok.
# Versions are pinned only in the wrapper modules next to this script:
#   etcd/go.mod        require go.etcd.io/etcd/server/v3 vX.Y.Z   (etcd's main package is that module's root)
#   kubernetes/go.mod  require k8s.io/kubernetes vX.Y.Z           (+ every staging module replaced with v0.Y.Z)
#   kwok/go.mod        require sigs.k8s.io/kwok vX.Y.Z            (cmd/kwok)
# The binaries go to
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/k8s/<key>/bin/
# where <key> names the three versions plus a hash of the wrapper modules' go.mod/go.sum
# and of $recipe below, so a bump or a changed recipe builds into a new directory
# (old directories are left behind: remove them by hand).
# Binaries already there are not rebuilt (no Go needed when all are present).
# Otherwise it builds with the Go toolchain on PATH (module downloads through the
# default GOPROXY), CGO off, the way the upstream release scripts do:
#   Kubernetes (hack/lib/golang.sh): -trimpath, -ldflags "-s -w" + version stamps,
#     tags selinux,notest,grpcnotrace;
#   etcd (build.sh): -trimpath;  kwok: plain build (its version is a constant).
# Progress goes to stderr; stdout carries only the bin dir (last line).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Bump when the build commands below change in a way that changes the binaries.
recipe=1

print_only=0
case "${1:-}" in
  "") ;;
  --print-dir) print_only=1 ;;
  *) echo "usage: build.sh [--print-dir]" >&2; exit 2 ;;
esac

pinned() { # pinned <go.mod> <module>: the required version of <module>
  local v
  v="$(awk -v m="$2" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) {print $(i+1); exit}}' "$1")"
  if [[ -z "$v" ]]; then
    echo "build.sh: no '$2 vX.Y.Z' requirement in $1" >&2
    exit 1
  fi
  echo "$v"
}
k8s_version="$(pinned "$here/kubernetes/go.mod" k8s.io/kubernetes)"
etcd_version="$(pinned "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
kwok_version="$(pinned "$here/kwok/go.mod" sigs.k8s.io/kwok)"

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
cache="${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}"
dir="$cache/k8s/$key"
bin="$dir/bin"
names=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

all_present() {
  local n
  for n in "${names[@]}"; do [[ -x "$bin/$n" ]] || return 1; done
}
if ((print_only)) || all_present; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go not found on PATH" >&2; exit 1; }
mkdir -p "$bin"

# Serialise concurrent builders; the winner builds, the others reuse its result.
exec 9>"$dir/.lock"
flock 9
if all_present; then
  echo "$bin"
  exit 0
fi

echo "build.sh: building into $bin ($(go version))" >&2
total_start=$SECONDS

# The staging replaces in kubernetes/go.mod must list exactly upstream's staging modules,
# each at v0.<minor>.<patch> of the pinned Kubernetes version.
(
  cd "$here/kubernetes"
  upstream_mod="$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  if [[ -z "$upstream_mod" || ! -f "$upstream_mod" ]]; then
    echo "build.sh: could not download k8s.io/kubernetes@$k8s_version" >&2
    exit 1
  fi
  staging="v0.${k8s_version#v1.}"
  want="$(go mod edit -json "$upstream_mod" |
    sed -n 's#^[[:space:]]*"Path": "\./staging/src/\(k8s\.io/[^"]*\)".*#\1#p' | sort)"
  have="$(go mod edit -json go.mod | tr -d ' \n\t' | grep -o '"Old":{"Path":"[^"]*"},"New":{"Path":"[^"]*","Version":"[^"]*"}' |
    sed 's#"Old":{"Path":"\([^"]*\)"},"New":{"Path":"\([^"]*\)","Version":"\([^"]*\)"}#\1 \2 \3#' |
    awk -v v="$staging" '$1 == $2 && $3 == v {print $1}' | sort)"
  if [[ -z "$want" ]] || ! diff <(echo "$want") <(echo "$have") >&2; then
    echo "build.sh: kubernetes/go.mod must replace each staging module of k8s.io/kubernetes@$k8s_version (<) with itself at $staging (>)" >&2
    exit 1
  fi
)

tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# build <name> <module dir> <version check substring> <go build args...>
build() {
  local name="$1" moddir="$2" expect="$3"
  shift 3
  if [[ -x "$bin/$name" ]]; then
    echo "build.sh: $name present" >&2
    return
  fi
  local start=$SECONDS got
  echo "build.sh: building $name" >&2
  (cd "$here/$moddir" && CGO_ENABLED=0 go build -mod=readonly -trimpath -buildvcs=false -o "$tmp/$name" "$@")
  got="$("$tmp/$name" --version 2>&1 | tr '\n' ' ')"
  if [[ "$got" != *"$expect"* ]]; then
    echo "build.sh: built $name reports '$got', expected '$expect'" >&2
    exit 1
  fi
  chmod 0755 "$tmp/$name"
  mv -f "$tmp/$name" "$bin/$name"
  echo "build.sh: $name built in $((SECONDS - start))s ($(du -h "$bin/$name" | cut -f1))" >&2
}

build etcd etcd "etcd Version: ${etcd_version#v}" go.etcd.io/etcd/server/v3

minor="${k8s_version#v1.}"
minor="${minor%%.*}"
kldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  kldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
  kldflags+=" -X $p.gitCommit= -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
for n in kube-apiserver kube-controller-manager kube-scheduler; do
  build "$n" kubernetes "Kubernetes $k8s_version" \
    -tags selinux,notest,grpcnotrace -ldflags "all=$kldflags" "k8s.io/kubernetes/cmd/$n"
done

build kwok kwok "${kwok_version#v}" sigs.k8s.io/kwok/cmd/kwok

echo "build.sh: all binaries in $bin ($((SECONDS - total_start))s)" >&2
echo "$bin"
