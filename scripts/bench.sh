#!/usr/bin/env bash
# Runs every benchmark in bench/ (built by `make bench`) and prints their figures in one go.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b"
  echo
done
