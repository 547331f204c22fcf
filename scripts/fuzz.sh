#!/usr/bin/env bash
# Runs the libFuzzer targets built by `make fuzz` (docs/fuzzing.md).
#   scripts/fuzz.sh smoke BUILD [SECONDS]   each target for SECONDS (default 20), one after another
#                                           (FUZZ_SEED=N: libFuzzer's -seed, as CI sets it)
#   scripts/fuzz.sh run BUILD TARGET [ARGS] one target on its corpus (e.g. -runs=1000000)
#   scripts/fuzz.sh long BUILD RUNS [TARGET...] each target for RUNS executions; prints runs and exec/s
# Each target starts from tests/fixtures/fuzz/<target>/ (seeds and past crashes) and grows a working
# corpus in BUILD/fuzz-corpus/<target>/; crashing inputs land in BUILD/fuzz-artifacts/<target>/.
# Limits: 2 GiB of memory and 10 s per input (a hang), as in the regression runner.
set -euo pipefail
mode=${1:?usage: fuzz.sh smoke|run BUILD ...}
build=${2:?build folder}
root=$(cd "$(dirname "$0")/.." && pwd)
limits=(-rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {  # target, extra args...
  local t=$1; shift
  local bin=$build/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: $bin is not built (make fuzz)" >&2; return 1; }
  mkdir -p "$build/fuzz-corpus/$t" "$build/fuzz-artifacts/$t"
  "$bin" "${limits[@]}" -artifact_prefix="$build/fuzz-artifacts/$t/" "$@" \
    "$build/fuzz-corpus/$t" "$root/tests/fixtures/fuzz/$t"
}

case $mode in
  smoke)
    seconds=${3:-20}
    failed=()
    for d in "$root"/tests/fixtures/fuzz/*/; do
      t=$(basename "$d")
      start=$SECONDS
      if run_one "$t" -max_total_time="$seconds" ${FUZZ_SEED:+-seed=$FUZZ_SEED} > "$build/fuzz-$t.log" 2>&1; then
        echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$build/fuzz-$t.log" | awk '{print $2}') runs in $((SECONDS - start)) s"
      else
        echo "fuzz $t: FAILED (log: $build/fuzz-$t.log; input: $build/fuzz-artifacts/$t/)"
        tail -30 "$build/fuzz-$t.log"
        failed+=("$t")
      fi
    done
    [ ${#failed[@]} -eq 0 ] || { echo "fuzz targets that failed: ${failed[*]}"; exit 1; } ;;
  run)
    t=${3:?target}; shift 3
    run_one "$t" "$@" ;;
  long)
    runs=${3:?runs}; shift 3
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || for d in "$root"/tests/fixtures/fuzz/*/; do targets+=("$(basename "$d")"); done
    for t in "${targets[@]}"; do
      start=$SECONDS
      if run_one "$t" -runs="$runs" > "$build/fuzz-long-$t.log" 2>&1; then status=ok; else status=FAILED; fi
      execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$build/fuzz-long-$t.log" | awk '{print $2}')
      rate=$(grep -o 'stat::average_exec_per_sec: [0-9]*' "$build/fuzz-long-$t.log" | awk '{print $2}')
      echo "$t $status execs=${execs:-?} exec/s=${rate:-?} seconds=$((SECONDS - start))"
    done ;;
  *) echo "fuzz.sh: unknown mode $mode" >&2; exit 2 ;;
esac
