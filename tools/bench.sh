#!/usr/bin/env bash
# `npm run bench [-- --smoke]`: benchmarks with the project's tools on PATH (see bench/run.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/env.sh
exec node --import tsx bench/run.ts "$@"
