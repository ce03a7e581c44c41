#!/usr/bin/env bash
# `npm run preview|up|destroy -- -s <stack> [pulumi flags]`: runs the Pulumi CLI installed on this machine, or else
# the offline toolchain that tools/setup.sh builds from Go modules (with a local file backend in .pulumi-state/
# unless PULUMI_BACKEND_URL says otherwise or you are logged in). Before the engine starts it settles what a
# newcomer would otherwise trip over: the dev stack's passphrase, and provider plugins that cannot be had.
# After a successful `up` it prints where the manifests are, the querier flags and what to do next.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/env.sh

say() { printf 'envoy-thanos: %s\n' "$*" >&2; }

# A real CLI on PATH first, then the offline toolchain; the npm `pulumi` shim (node_modules/.bin, which
# `npm run` puts first) only as the last resort, since it downloads the CLI at run time.
pulumi=""
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  if [[ "$dir" != */node_modules/.bin ]] && [ -x "$dir/pulumi" ]; then
    pulumi="$dir/pulumi"
    break
  fi
done
pulumi=${pulumi:-$(command -v pulumi || true)}
if [ -z "$pulumi" ]; then
  say "no pulumi CLI: install it (npx pulumi downloads it where there is internet), or run: bash tools/setup.sh"
  exit 1
fi

command=${1:-}
stack=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -s | --stack) stack="${args[i + 1]:-}" ;;
    --stack=*) stack="${args[i]#--stack=}" ;;
  esac
done

offline=false
if [[ "$pulumi" == "$ENVOY_THANOS_CACHE"/* ]]; then
  offline=true
  # The offline toolchain cannot reach Pulumi Cloud or download plugins.
  export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! "$pulumi" whoami >/dev/null 2>&1; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  fi
fi

# The dev stack holds only throwaway certificates; its state is encrypted with a passphrase everyone knows
# (Pulumi.dev.yaml carries the matching salt), so that the first `npm run up -- -s dev` asks for nothing.
if [ "$stack" = dev ] && [ -z "${PULUMI_CONFIG_PASSPHRASE+set}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  export PULUMI_CONFIG_PASSPHRASE=envoy-thanos-dev
  say "dev stack: state secrets use the documented development passphrase (set PULUMI_CONFIG_PASSPHRASE to override)"
fi

# Provider plugins the stack needs but this engine cannot get: say so in one paragraph, before the engine's
# own error would. Only where plugins are not downloaded automatically (the offline toolchain sets that).
if [ -n "$stack" ] && [[ "$command" =~ ^(up|update|preview|refresh)$ ]] && [ "${PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION:-}" = true ]; then
  installed=$("$pulumi" plugin ls --json 2>/dev/null || echo '[]')
  missing=()
  install_lines=()
  while read -r name version; do
    [ -n "$name" ] || continue
    if ! command -v "pulumi-resource-$name" >/dev/null 2>&1 \
      && ! node -e 'process.exit(JSON.parse(process.argv[1]).some((p) => p.kind === "resource" && p.name === process.argv[2]) ? 0 : 1)' "$installed" "$name"; then
      missing+=("$name")
      install_lines+=("pulumi plugin install resource $name $version")
    fi
  done < <(node --import tsx tools/stack-plugins.ts "$stack")
  if [ ${#missing[@]} -gt 0 ]; then
    {
      printf '\n'
      printf 'envoy-thanos: stack %s issues its certificates with the @pulumi/tls and @pulumi/random providers (tls.mode: generate),\n' "$stack"
      printf 'but this engine has no %s plugin and may not download one' "$(IFS=/; echo "${missing[*]}")"
      if $offline; then printf ' (it is the offline toolchain that tools/setup.sh builds; the Go module proxy does not serve these providers)'; fi
      printf '.\nOn a machine with internet access, install them once:\n'
      printf '    %s\n' "${install_lines[@]}"
      printf 'Without internet, give the stack certificates from PEM files instead (docs/certificates.md, "Certificates from files"):\n'
      printf '    pulumi config set -s %s --path envoy-thanos:tls.mode files\n' "$stack"
      printf '    pulumi config set -s %s --path envoy-thanos:tls.directory <directory with ca.crt, client.crt, client.key, servers/<cluster>.crt|.key>\n\n' "$stack"
    } >&2
    exit 1
  fi
fi

# Only the commands that deploy create a missing stack; reading one (`stack output`, for `npm run status`)
# must not leave an empty stack behind a typo.
if [ -n "$stack" ] && [[ "$command" =~ ^(up|update|preview|refresh)$ ]]; then
  "$pulumi" stack select --create "$stack" >/dev/null
fi

status=0
if $offline; then
  # The offline Kubernetes provider is older than the SDK in package-lock.json (the Go module proxy serves no newer
  # one) and runs from PATH, and the engine says both for every provider object of every run. Say it once, with
  # both versions. PULUMI_DEV is the engine's switch for the version check (in CLI v3.274 it otherwise changes only
  # the `package` and `convert` commands and bundled-plugin installs, none of which this wrapper runs); the
  # "from $PATH" notices have no switch, so they are taken out of the display.
  buildinfo="$(dirname "$pulumi")/../BUILDINFO"
  built() { sed -n "s/^key=.*$1-\([0-9][^_]*\)_.*/\1/p" "$buildinfo" 2>/dev/null || true; }
  sdk=$(node -p 'require("@pulumi/kubernetes/package.json").version')
  say "offline toolchain: its Kubernetes provider is v$(built k8s), older than the @pulumi/kubernetes $sdk SDK this project pins (the newest provider the Go module proxy serves; tools/pulumi-offline/README.md), and runs from $(dirname "$pulumi"); the engine's repeated notices about it are left out"
  if [ -n "$stack" ] && node --import tsx tools/stack-plugins.ts "$stack" | grep -q '^tls '; then
    say "offline toolchain: its tls and random providers are v$(built tls) and v$(built random), built from the upstream source vendored in third_party/ (the newest the project has), a little older than the @pulumi/tls $(node -p 'require("@pulumi/tls/package.json").version') and @pulumi/random $(node -p 'require("@pulumi/random/package.json").version') SDKs"
  fi
  export PULUMI_DEV=true
  set -o pipefail
  "$pulumi" "$@" | sed -u '/warning: using pulumi-resource-[a-z]* from \$PATH at /d' || status=$?
else
  "$pulumi" "$@" || status=$?
fi
if [ "$status" -eq 0 ] && [[ "$command" =~ ^(up|update)$ ]] && [ -n "$stack" ]; then
  "$pulumi" stack output --json -s "$stack" | node --import tsx tools/next-steps.ts "$stack"
fi
exit "$status"
