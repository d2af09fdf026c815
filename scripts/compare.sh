#!/usr/bin/env bash
# The side-by-side comparison: dyad's whole training step next to PyTorch's, on the same machine in one run,
# written as a Markdown table for docs/performance.md.
#
#   bash scripts/compare.sh [--cpu-only | --gpu-only] [--no-compile | --compile-only] [--threads N]
#                           [--build DIR] [--out DIR] [--quick]
#
# GPU (when dyad sees one and --cpu-only is not given): the baseline CNN at batch 128, 256, 1024 and the
# ResNet-18 at 256, in strict FP32, TF32 and bf16, each next to PyTorch eager with matching settings
# (cudnn.benchmark on, TF32 only in the TF32 rows, bf16 autocast + channels_last in the bf16 rows) and
# torch.compile in FP32, with the peak GPU memory of both. CPU (always): dyad's omp step against PyTorch's CPU
# step at the same thread count (default 2; --threads 1 or 2), for the baseline CNN at batch 64 and the
# ResNet-18 at batch 32. Writes OUT/compare.md (also printed), the raw
# results OUT/dyad_*.json (Google Benchmark) and OUT/pytorch.jsonl, and the logs. PyTorch comes from
# $PYTHON (default python3); without it the table holds dyad's numbers only. --quick: fewer repeats.
# --gpu-only skips the CPU rows; --no-compile skips torch.compile; --compile-only runs dyad's FP32 rows and
# torch.compile's only (scripts/gpu_run.sh splits the GPU comparison into two stages this way).
# Builds bench_train_step in DIR (default build-compare) when it is not there yet. About 6-7 minutes with a
# GPU (torch.compile's compilation is most of PyTorch's share), 3-4 minutes CPU-only on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
cpu_only=0
gpu_only=0
compile=yes
threads=2
build=build-compare
out=compare-out
quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --cpu-only) cpu_only=1 ;;
    --gpu-only) gpu_only=1 ;;
    --no-compile) compile=no ;;
    --compile-only) compile=only ;;
    --threads) threads=$2; shift ;;
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --quick) quick=1 ;;
    *) echo "compare.sh: unknown argument '$1' (see the comment at the top of scripts/compare.sh)" >&2; exit 2 ;;
  esac
  shift
done
case $threads in 1 | 2) ;; *) echo "compare.sh: --threads must be 1 or 2 (the benchmark's CPU cases), got $threads" >&2; exit 2 ;; esac
python=${PYTHON:-python3}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logs=$out/logs
rm -f "$out"/dyad_*.json "$out/pytorch.jsonl"
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*"; }

bench=$build/bin/bench_train_step
if [ ! -x "$bench" ]; then
  log "building bench_train_step in $build"
  cuda=AUTO
  [ $cpu_only -eq 1 ] && cuda=OFF
  # An existing build directory keeps its own settings; a new one is configured here.
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDYAD_WITH_CUDA=$cuda -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared -DDYAD_BUILD_EXAMPLES=OFF >"$logs/configure.log" 2>&1 ||
      { tail -20 "$logs/configure.log"; exit 1; }
  fi
  cmake --build "$build" --target bench_train_step -j "$(nproc)" >"$logs/build.log" 2>&1 ||
    { tail -20 "$logs/build.log" "$logs/configure.log" 2>/dev/null; exit 1; }
fi

gpu=0
if [ $cpu_only -eq 0 ] && "$bench" --benchmark_filter='BM_train_step_cuda/batch:128/precision:0/model:0' --benchmark_min_time=0.01 2>&1 |
  grep -q "img/s"; then
  gpu=1
fi
torch_ok=0
if "$python" -c "import torch" 2>/dev/null; then torch_ok=1; fi
torch_gpu=0
if [ $gpu -eq 1 ] && [ $torch_ok -eq 1 ] && "$python" -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
  torch_gpu=1
fi
reps=3
steps=20
[ $quick -eq 1 ] && reps=2 && steps=10
# Each PyTorch run is capped (torch.compile compiles for a minute or more).
pt_limit=600
[ $quick -eq 1 ] && pt_limit=150
pt() { # pt NAME ARGS...: one PyTorch run, appended to pytorch.jsonl
  local name=$1
  shift
  [ $torch_ok -eq 1 ] || return 0
  log "pytorch $name"
  timeout $pt_limit "$python" bench/pytorch_train_step.py --json "$out/pytorch.jsonl" --repeats $reps "$@" \
    >"$logs/pytorch_$name.log" 2>&1 || log "pytorch $name FAILED (see $logs/pytorch_$name.log)"
}

# GPU: dyad first (one process, every configuration), then PyTorch.
if [ $gpu -eq 1 ]; then
  log "dyad GPU step"
  filter='BM_train_step_cuda'
  [ $compile = only ] && filter='BM_train_step_cuda/.*/precision:0/'
  "$bench" --benchmark_filter="$filter" --benchmark_min_time=1 --benchmark_repetitions=$reps \
    --benchmark_out="$out/dyad_gpu.json" --benchmark_out_format=json >"$logs/dyad_gpu.log" 2>&1 ||
    log "dyad GPU step FAILED (see $logs/dyad_gpu.log)"
  if [ $torch_gpu -eq 1 ] && [ $compile != only ]; then
    pt fp32 --device cuda --batch 128 256 1024 --steps $steps
    pt tf32 --device cuda --batch 128 256 --precision tf32 --steps $steps
    pt bf16 --device cuda --batch 256 --precision bf16 --channels-last --steps $steps
    pt resnet18_fp32 --device cuda --model resnet18 --batch 256 --steps $steps
    pt resnet18_tf32 --device cuda --model resnet18 --batch 256 --precision tf32 --steps $steps
    pt resnet18_bf16 --device cuda --model resnet18 --batch 256 --precision bf16 --channels-last --steps $steps
  fi
  if [ $torch_gpu -eq 1 ] && [ $compile != no ]; then
    pt compile_fp32 --device cuda --batch 128 256 --compile --steps $steps
    pt resnet18_compile_fp32 --device cuda --model resnet18 --batch 256 --compile --steps $steps
  fi
fi

# CPU: the baseline CNN at batch 64, dyad omp and PyTorch at the same thread count. The two alternate
# (dyad, PyTorch, dyad, PyTorch) so a change in the machine's load hits both.
if [ $gpu_only -eq 0 ]; then
  for round in 1 2; do
    log "dyad CPU step, $threads threads (round $round)"
    "$bench" --benchmark_filter="BM_train_step/omp:1/threads:$threads/batch:64/model:0/fuse:1" --benchmark_min_time=2 \
      --benchmark_repetitions=$((reps > 2 ? 2 : reps)) --benchmark_out="$out/dyad_cpu_$round.json" \
      --benchmark_out_format=json >"$logs/dyad_cpu_$round.log" 2>&1 || log "dyad CPU step FAILED"
    pt "cpu_$round" --device cpu --threads "$threads" --batch 64 --steps 5
  done

  # The ResNet-18 at batch 32, once each (a step takes seconds on two cores).
  log "dyad CPU step, ResNet-18"
  "$bench" --benchmark_filter="BM_train_step/omp:1/threads:$threads/batch:32/model:1/fuse:1" --benchmark_min_time=2 \
    --benchmark_out="$out/dyad_cpu_resnet18.json" --benchmark_out_format=json >"$logs/dyad_cpu_resnet18.log" 2>&1 ||
    log "dyad CPU ResNet-18 step FAILED"
  pt cpu_resnet18 --device cpu --model resnet18 --threads "$threads" --batch 32 --steps 2
fi

log "table"
"$python" scripts/compare_table.py "$out" >"$out/compare.md" 2>"$logs/table.log" ||
  python3 scripts/compare_table.py "$out" >"$out/compare.md" ||
  { cat "$logs/table.log"; exit 1; }
cat "$out/compare.md"
log "done in $(($(date +%s) - start)) s: $out/compare.md"
