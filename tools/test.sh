#!/usr/bin/env bash
# The test command (`npm test`): unit tests under Pulumi mocks, then the end-to-end tests that run
# real programs. One node:test run, so one summary. Run `bash tools/setup.sh` once first.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
. tools/env.sh
shopt -s globstar nullglob
files=(test/unit/**/*.test.ts test/e2e/**/*.test.ts)
. tools/run-dir.sh
run_dir_begin et
tap="$run_dir/report.tap"
# Two files at a time: most end-to-end files spend their time waiting (a stream idle for 75 s, API servers and
# controllers starting), not computing, so a second file uses the cores the first leaves idle.
node --import tsx --test --test-concurrency=2 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "${files[@]}" "$@"
status=$?
passed=$(sed -n 's/^# pass //p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail //p' "$tap" | tail -1)
cancelled=$(sed -n 's/^# cancelled //p' "$tap" | tail -1)
failed=$(( ${failed:-0} + ${cancelled:-0} ))
skipped=$(sed -n 's/^# skipped //p' "$tap" | tail -1)
echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
run_dir_end "$status"
exit $status
