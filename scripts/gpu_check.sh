#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU (Hopper: sm_90) and the CUDA toolkit, configures and
# builds dyad, runs every test (CPU and CUDA), runs the CUDA tests under compute-sanitizer (memcheck and
# initcheck on all of them; racecheck and synccheck on the kernels that use shared memory), runs the GPU
# benchmarks, the pipeline-versus-step benchmark, the trainer on Fashion-MNIST (CPU and GPU) and the
# PyTorch reference on the same card, and writes a short summary.
#
#   bash scripts/gpu_check.sh [OUT_DIR] [PARTS]      (OUT_DIR default: $OUT, else ./gpu-check)
#
# PARTS (default "check perf"): "check" = ctest, the CUDA tests and compute-sanitizer; "perf" = the GPU
# benchmarks of every family, scripts/compare.sh --quick (dyad vs PyTorch eager and torch.compile, peak
# memory), the pipeline benchmark and the trainer. The build is kept in build-gpu, so the two parts can run
# as two calls on the same machine. For a long session only: the configure and the build (nvcc and 300+
# test cases' worth of C++) alone take about 10 minutes with 16 cores, and the whole check an estimated
# 20-40 minutes. Within a loan of minutes, build the pack here (scripts/gpu_pack.sh) and run its stages
# there (scripts/gpu_run.sh).
#
# OUT_DIR/summary.md is the summary (also printed last); OUT_DIR/logs/ holds every full log. Needs no
# network: Debian packages the machine lacks are taken from .deps/ (see scripts/gpu_deps.sh). Never timed
# on a GPU (estimate above). Exit status: 0 when the build, the tests and the sanitizers all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-check}}
parts=${2:-check perf}
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logs=$out/logs
summary=$out/summary.md
build=build-gpu
jobs=$(nproc)
status=0
start=$(date +%s)

note() { echo "$*" | tee -a "$summary"; }
elapsed() { echo $(($(date +%s) - start)); }
# step NAME TIMEOUT CMD...: runs CMD with its output in logs/NAME.log and notes the outcome.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  note "- $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $(($(date +%s) - t0)) s"
  return $rc
}

: >"$summary"
note "# dyad GPU check, $(date -u '+%Y-%m-%d %H:%M UTC')"
note ""
note "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
note "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo 'nvidia-smi failed')"
note "- nvcc: $(nvcc --version 2>/dev/null | tail -n 2 | head -n 1)"
note "- CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# Debian packages from .deps/, unpacked into a private prefix searched first (Catch2 v2 before any v3).
prefix=""
if compgen -G ".deps/*.deb" >/dev/null; then
  rm -rf /tmp/dyad-deps
  for d in .deps/*.deb; do dpkg -x "$d" /tmp/dyad-deps; done
  prefix=/tmp/dyad-deps/usr
  note "- packages from .deps: $(ls .deps/*.deb | wc -l)"
fi

step configure 300 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDYAD_WITH_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared -DDYAD_WERROR=OFF \
  ${prefix:+-DCMAKE_PREFIX_PATH=$prefix} || { cat "$logs/configure.log" | tail -20; exit 1; }
step build 900 cmake --build "$build" -j "$jobs" || { grep -m 20 -E "error" "$logs/build.log"; tail -5 "$summary"; exit 1; }
bin=$build/bin
[ -x "$bin/dyad_cuda_tests" ] || bin=$build/tests

if has check; then
# The CPU suite through ctest, then the CUDA tests with their own report (durations, every failed
# assertion; exit 77 means no usable GPU).
step ctest 600 ctest --test-dir "$build" -j "$jobs" --timeout 300 --output-on-failure -E '^cuda_tests$' || status=1
note "  $(grep -E 'tests passed|tests failed' "$logs/ctest.log" | tail -1)"
step cuda_tests 300 "$bin/dyad_cuda_tests" --durations yes || status=1
note "  $(grep -E '^(All tests passed|test cases:|CUDA tests skipped)' "$logs/cuda_tests.log" | tail -1)"

# compute-sanitizer. memcheck (with leak checking) and initcheck on every CUDA test but the whole-model
# ones (minutes under the tools); racecheck and synccheck on the kernels with shared memory, barriers and
# warp-level reductions. DYAD_SANITIZER_TOOLS picks a subset (default: all four).
tools=${DYAD_SANITIZER_TOOLS:-memcheck initcheck racecheck synccheck}
if command -v compute-sanitizer >/dev/null; then
  for tool in $tools; do
    case $tool in
      memcheck) extra=(--leak-check full); filter="~[train]" ;;
      initcheck) extra=(); filter="~[train]" ;;
      *) extra=(); filter="[reduce],[gemm],[loss],[norm],[pool],[conv]" ;;
    esac
    step "$tool" 420 compute-sanitizer --tool "$tool" "${extra[@]}" --error-exitcode 99 --print-limit 50 \
      "$bin/dyad_cuda_tests" "$filter" || status=1
    note "  $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$logs/$tool.log" | tail -1)"
  done
else
  note "- compute-sanitizer: not found"
  status=1
fi

fi

if has perf; then
# Benchmarks: the GPU variants of each family, then the training step next to PyTorch on the same card.
note ""
note "## Benchmarks (GPU)"
for b in bench_elementwise bench_reduce bench_layers bench_loss bench_optim bench_image bench_gemm bench_conv; do
  step "$b" 120 "$bin/$b" --benchmark_filter=cuda --benchmark_min_time=0.1 || true
done
step compare 420 bash scripts/compare.sh --quick --build "$build" --out "$out/compare" || true
cat "$out/compare/compare.md" >>"$summary" 2>/dev/null || note "- compare: no table (see logs/compare.log)"
# The trainer's epoch loop (loader + step) against the bare step: the pipeline_vs_step counter.
step bench_pipeline 120 "$bin/bench_pipeline" --benchmark_filter="BM_pipeline/1/" --benchmark_min_time=1 || true
grep -E "^BM_" "$logs/bench_pipeline.log" | sed 's/^/    /' | tee -a "$summary"
# The trainer itself on Fashion-MNIST, one epoch on the CPU and on the GPU: the speed-up it reports.
fashion=/usr/share/datasets/fashion-mnist
[ -d "$fashion" ] || fashion=/tmp/dyad-deps/usr/share/datasets/fashion-mnist
step trainer 240 "$bin/dyad-tinyimagenet" --data "$fashion" --epochs 1 --device cpu,cuda --out "$out/trainer" || true
grep -E "^(cpu|cuda) +epoch|speed-up|^backend|^cpu |^cuda " "$logs/trainer.log" | sed 's/^/    /' | tee -a "$summary"
fi

note ""
note "Total: $(elapsed) s. Result: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
