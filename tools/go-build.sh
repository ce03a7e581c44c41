# shellcheck shell=bash
# What the tools/<tool>/build.sh scripts share, sourced by each. A build script builds a pinned Go program once into
#   ${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}/<tool>/<key>/
# and prints the result's path as the last line of stdout (progress goes to stderr). With --print-path (--print-dir
# where the result is a directory) it prints the path only and builds nothing; when the result is there already it
# prints the path and needs no Go. Concurrent builders of one key serialise on a lock: one builds, the others reuse
# its result. A result is installed in one rename, so an interrupted build leaves no partial result behind.
#
# A script with one binary, in its order:
#   version="$(go_pinned "$here/go.mod" example.com/tool)"   # the version its wrapper module requires
#   go_build_begin tool "$version" "$@"   # ends the script when built; else locks, cds to the script's directory
#                                         # and sets $out (the binary's path) and $scratch (an empty build directory)
#   go_check_directives example.com/tool "$version"   # the wrapper repeats the replace/exclude directives
#   CGO_ENABLED=0 go build ... -o "$scratch/tool" example.com/tool/cmd/tool
#   ...                                   # the script's own check of the version the binary reports
#   go_build_install "tool $version"      # moves it to $out and prints $out
# A script with several results uses the parts: go_build_options, go_build_lock, go_upstream_gomod.

go_build_cache=${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}
# The sourcing script, as messages name it: "thanos/build.sh".
go_build_here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
go_build_name="$(basename "$go_build_here")/$(basename "${BASH_SOURCE[1]}")"
go_build_print_only=0

go_build_say() { echo "$go_build_name: $*" >&2; }
go_build_fail() {
  go_build_say "$*"
  exit 1
}

# go_build_options <flag> "$@": the script's arguments: none, or <flag> to print the path only.
go_build_options() {
  local flag=$1
  shift
  case "$#:${1:-}" in
    0:) ;;
    "1:$flag") go_build_print_only=1 ;;
    *)
      echo "usage: $go_build_name [$flag]" >&2
      exit 2
      ;;
  esac
}

# go_pinned <go.mod> <module>: the version of <module> that <go.mod> requires.
go_pinned() {
  local version
  version="$(awk -v m="$2" '{for (i = 1; i < NF; i++) if ($i == m && $(i+1) ~ /^v[0-9]/) {print $(i+1); exit}}' "$1")"
  [[ -n $version ]] || go_build_fail "no '$2 vX.Y.Z' requirement in $1"
  echo "$version"
}

# go_build_lock <dir> <result> <is-built command...>: prints <result> and ends the script when it is built (or only
# its path is asked for); otherwise waits for <dir>'s lock and returns holding it, unless the holder built the result
# meanwhile.
go_build_lock() {
  local dir=$1 result=$2
  shift 2
  if ((go_build_print_only)) || "$@"; then
    echo "$result"
    exit 0
  fi
  command -v go >/dev/null || go_build_fail "go not found on PATH"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  if "$@"; then
    echo "$result"
    exit 0
  fi
}

# go_build_begin <tool> <key> "$@": one binary, <tool>, at <cache>/<tool>/<key>/<tool>; see the top of this file.
go_build_begin() {
  local key=$2
  go_build_tool=$1
  shift 2
  go_build_options --print-path "$@"
  local dir="$go_build_cache/$go_build_tool/$key"
  out="$dir/$go_build_tool"
  go_build_lock "$dir" "$out" test -x "$out"
  # Leftovers of interrupted builds share the directory's name pattern; the lock says none is running.
  rm -rf "$dir"/.build.*
  scratch="$(mktemp -d "$dir/.build.XXXXXX")"
  # Module copies taken from Go's read-only module cache need write permission to be removed.
  trap 'chmod -R u+w "$scratch"; rm -rf "$scratch"' EXIT
  cd "$go_build_here" || exit 1
  go_build_started=$SECONDS
  go_build_say "building $go_build_tool $key into $out ($(go version))"
}

# go_build_install <what was built>: moves $scratch/<tool> to $out in one rename and prints $out.
go_build_install() {
  chmod 0755 "$scratch/$go_build_tool"
  mv -f "$scratch/$go_build_tool" "$out"
  go_build_say "$1; built in $((SECONDS - go_build_started))s"
  echo "$out"
}

# go_upstream_gomod <module> <version>: downloads <module>@<version>, checked against go.sum in the current
# directory, and prints the path of its own go.mod.
go_upstream_gomod() {
  local gomod
  gomod="$(go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  [[ -n $gomod && -f $gomod ]] || go_build_fail "could not download $1@$2"
  echo "$gomod"
}

# go_build_directives <go.mod> [old path...]: the replace and exclude directives of <go.mod>, one a line, white space
# folded, sorted; without replacements by a local path and those of the old paths named, which are a wrapper's own.
go_build_directives() {
  local gomod=$1
  shift
  go mod edit -print "$gomod" | awk -v own=" $* " '
    { sub(/\/\/.*/, "") }
    NF == 0 { next }
    { $1 = $1 }
    /^(replace|exclude) \($/ { block = $1; next }
    block != "" && $0 == ")" { block = ""; next }
    block != "" { $0 = block " " $0 }
    $1 != "replace" && $1 != "exclude" { next }
    $1 == "replace" && ($0 ~ / => [.\/]/ || index(own, " " $2 " ")) { next }
    { print }' | LC_ALL=C sort
}

# go_check_directives <module> <version> [old path...]: a module that requires <module> does not inherit its replace
# and exclude directives, so the wrapper's go.mod (in the current directory) must repeat them, or the build silently
# differs from the release. The old paths named are replacements the wrapper makes on purpose (its header says why).
go_check_directives() {
  local upstream theirs ours
  upstream="$(go_upstream_gomod "$1" "$2")"
  theirs="$(go_build_directives "$upstream" "${@:3}")"
  ours="$(go_build_directives go.mod "${@:3}")"
  if [[ $theirs != "$ours" ]]; then
    diff <(echo "$theirs") <(echo "$ours") >&2 || true
    go_build_fail "replace/exclude directives in $PWD/go.mod differ from $1@$2's go.mod (< theirs, > ours); copy them, then tidy go.mod as its header says"
  fi
}
