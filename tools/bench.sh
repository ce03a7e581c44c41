#!/usr/bin/env bash
# `npm run bench [-- --smoke]`: benchmarks with the project's tools on PATH (see bench/run.ts).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tools/env.sh
. tools/run-dir.sh
run_dir_begin et-bench
node --import tsx bench/run.ts "$@"
status=$?
run_dir_end "$status"
exit $status
