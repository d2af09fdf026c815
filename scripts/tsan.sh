#!/usr/bin/env bash
# ThreadSanitizer over dyad's threads: the OpenMP kernels (libomp with the Archer tool, which makes
# OpenMP's synchronisation visible to TSan), the data loader's prefetch thread, and two models trained on
# two threads at once (the thread contract, docs/architecture.md).
#
#   bash scripts/tsan.sh [CATCH_FILTER]     (default: "[omp],[loader],[data],[integration],[threads]")
#
# Builds the tsan preset (clang, CPU only) in build-tsan, runs the chosen tests with 2 and 3 OpenMP threads,
# and exits non-zero on any report. Needs `bash scripts/setup.sh --sanitize`.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-"[omp],[loader],[data],[integration],[threads]"}
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1 || true)
[ -n "$archer" ] || { echo "tsan: libarcher.so not found (install libomp-dev)" >&2; exit 1; }

cmake --preset tsan >/dev/null
cmake --build --preset tsan --target dyad_tests dyad-tinyimagenet

export OMP_TOOL_LIBRARIES=$archer
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 history_size=4 ignore_noninstrumented_modules=1 suppressions=$PWD/tests/sanitizers/tsan.supp"
t0=$(date +%s)
for threads in 2 3; do
  echo "== $filter with OMP_NUM_THREADS=$threads"
  OMP_NUM_THREADS=$threads ./build-tsan/bin/dyad_tests "$filter" --durations no
done
echo "tsan: clean in $(($(date +%s) - t0)) s"
