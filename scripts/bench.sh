#!/usr/bin/env bash
# Runs every benchmark in bench/ (built by `make bench`) and prints their figures in one go.
set -euo pipefail
build=${1:-build}
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  if [ "$(basename "$b")" = bench_gui ] && [ -z "${DISPLAY:-}" ]; then
    xvfb-run -a -s "-screen 0 1280x1024x24" "$b"  # no display: Xvfb with Mesa llvmpipe
  else
    "$b"
  fi
  echo
done
