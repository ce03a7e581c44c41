# Versions of the external tools the tests run, in one place. Sourced by tools/*.sh.
# The Envoy version must equal ENVOY_VERSION in components/config/defaults.ts (a unit test checks).
NODE_VERSION=22.23.3
ENVOY_VERSION=1.40.0
ENVOY_THANOS_CACHE=${ENVOY_THANOS_CACHE:-$HOME/.cache/envoy-thanos}
