#!/usr/bin/env bash
# `npm run bench [-- --smoke]`: benchmarks with the project's tools on PATH (see bench/run.ts).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tools/env.sh
# Every temporary file of the run (Envoy work directories, rendered stacks, the smoke run's flame graphs, each
# process's log) goes under one directory: removed when the run succeeds, kept and named when it fails.
run_tmp=$(mktemp -d /tmp/et-bench.XXXXXX)
export TMPDIR=$run_tmp
node --import tsx bench/run.ts "$@"
status=$?
if [ "$status" -eq 0 ]; then
  rm -rf "$run_tmp"
else
  echo "the run's temporary files, with every process's log, are kept in $run_tmp"
fi
exit $status
