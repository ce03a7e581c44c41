# shellcheck shell=bash
# One directory for every temporary file of a run (each process's log, certificates, stacks, sockets): removed
# when the run succeeds, kept and named when it fails. Short, because Unix socket paths under it are limited to
# 107 bytes. Source it, then `run_dir_begin <prefix>` before the run and `run_dir_end <status>` after it.

run_dir_begin() {
  run_dir=$(mktemp -d "/tmp/$1.XXXXXX")
  export TMPDIR=$run_dir
}

run_dir_end() {
  if [ "$1" -eq 0 ]; then
    rm -rf "$run_dir"
  else
    echo "the run's temporary files, with every process's log, are kept in $run_dir"
  fi
}
