# shellcheck shell=bash disable=SC2034  # variables for the scripts that source this file
# Versions of the external tools the tests run, in one place. Sourced by tools/*.sh.
# The Envoy version must equal ENVOY_VERSION in components/config/defaults.ts (a unit test checks).
NODE_VERSION=22.23.3
ENVOY_VERSION=1.40.0
ACTIONLINT_VERSION=v1.7.12
# Manifest scanners run by test/e2e/scanners.test.ts: checkov from PyPI (in .venv), kube-score from its Go module.
CHECKOV_VERSION=3.3.30
KUBE_SCORE_VERSION=v1.20.0
ENVOY_THANOS_CACHE=${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}
# Thanos is pinned in tools/thanos/go.mod (the wrapper module that builds it).
THANOS_VERSION=$(sed -n "s#^\(require\)\{0,1\}[[:space:]]*github.com/thanos-io/thanos \(v[0-9][^[:space:]]*\).*#\2#p" "$(dirname "${BASH_SOURCE[0]}")/thanos/go.mod" | head -n 1)
