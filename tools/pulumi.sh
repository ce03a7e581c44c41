#!/usr/bin/env bash
# `npm run preview -- -s <stack>` / `npm run up -- -s <stack>`: runs the Pulumi CLI installed on this
# machine, or else the offline toolchain that tools/setup.sh builds from Go modules (with a local file
# backend in .pulumi-state/ unless PULUMI_BACKEND_URL says otherwise or you are logged in).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/env.sh
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
  echo "no pulumi CLI: install it (npx pulumi downloads it where there is internet), or run: bash tools/setup.sh" >&2
  exit 1
fi
stack=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -s | --stack) stack="${args[i + 1]:-}" ;;
    --stack=*) stack="${args[i]#--stack=}" ;;
  esac
done
if [[ "$pulumi" == "$ENVOY_THANOS_CACHE"/* ]]; then
  # The offline toolchain cannot reach Pulumi Cloud or download plugins.
  export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  if [ -z "${PULUMI_BACKEND_URL:-}" ] && ! "$pulumi" whoami >/dev/null 2>&1; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  fi
fi
if [ -n "$stack" ]; then
  "$pulumi" stack select --create "$stack" >/dev/null
fi
exec "$pulumi" "$@"
