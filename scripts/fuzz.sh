#!/usr/bin/env bash
# Coverage-guided fuzzing of the file parsers: builds the libFuzzer targets of fuzz/ with clang
# (build-fuzz/, -DXGRAD_FUZZ=ON: libFuzzer, AddressSanitizer, UndefinedBehaviorSanitizer) and
# runs each for SECONDS_PER_TARGET seconds (default 20) from a fresh copy of its seed corpus
# fuzz/corpus/<parser>/. Prints per target the executions, libFuzzer's final coverage (cov:
# edges, ft: features) and the corpus size. Fails when a target finds a crash, a sanitizer
# report, a timeout or a broken property; the input is kept in build-fuzz/findings/<parser>/.
# usage: scripts/fuzz.sh [SECONDS_PER_TARGET]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds="${1:-20}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi

# clang with its runtimes (libFuzzer and the sanitizers) and its OpenMP, besides the usual.
xgrad_install_packages "${XGRAD_PACKAGES[@]}" clang libclang-rt-dev libomp-dev

build_dir="$XGRAD_ROOT/build-fuzz"
# The library and the fuzz targets only: no tests, benchmarks, examples or MPI.
xgrad_build "$build_dir" "" -DCMAKE_CXX_COMPILER=clang++ -DXGRAD_FUZZ=ON -DXGRAD_BUILD_TESTS=OFF \
  -DXGRAD_BUILD_BENCH=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_WITH_MPI=OFF

# The checkpoint and IDX targets write their inputs as files: in memory where there is /dev/shm.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  export TMPDIR=/dev/shm
fi
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"

status=0
for parser in npy checkpoint idx; do
  target="$build_dir/fuzz/fuzz_$parser"
  corpus="$build_dir/corpus/$parser"
  findings="$build_dir/findings/$parser"
  log="$build_dir/fuzz_$parser.log"
  rm -rf "$corpus" "$findings"
  mkdir -p "$corpus" "$findings"
  cp "$XGRAD_ROOT/fuzz/corpus/$parser/"* "$corpus/"
  seeds=$(find "$corpus" -type f | wc -l)
  # -malloc_limit_mb: no input of at most 4 KiB may make a parser allocate 64 MiB at once (it
  # would have trusted a size field before checking it against the file).
  if "$target" -max_total_time="$seconds" -print_final_stats=1 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=64 \
      -dict="$XGRAD_ROOT/fuzz/$parser.dict" -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1; then
    result="ok"
  else
    result="FAILED"
    status=1
  fi
  # libFuzzer's last status line, e.g. "#84986 DONE cov: 719 ft: 1001 corp: 97/11407b ...".
  status_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED)' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$status_line")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$status_line")
  corp=$(sed -n 's/.*corp: \([0-9]*\)\/\([0-9]*[a-zA-Z]*\).*/\1 inputs, \2/p' <<<"$status_line")
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  printf 'fuzz_%-11s %-6s %9s executions in %ss  cov: %-5s ft: %-5s corpus: %s (from %s seeds)\n' \
    "$parser" "$result" "${execs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$seeds"
  if [ "$result" != "ok" ]; then
    echo "---- fuzz_$parser: the end of $log; the input is in $findings/" >&2
    tail -n 40 "$log" >&2
  fi
done
exit $status
