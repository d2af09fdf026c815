#!/usr/bin/env bash
# The side-by-side comparison: dyad's whole training step next to PyTorch's, on the same machine in one run,
# written as a Markdown table for docs/performance.md.
#
#   bash scripts/compare.sh [--cpu-only | --gpu-only] [--no-compile | --compile-only] [--threads N]
#                           [--rounds N] [--build DIR] [--out DIR] [--quick]
#
# GPU (when dyad sees one and --cpu-only is not given): the baseline CNN at batch 128, 256, 1024 and the
# ResNet-18 at 256, in strict FP32, TF32 and bf16, each next to PyTorch eager with matching settings
# (cudnn.benchmark on, TF32 only in the TF32 rows, bf16 autocast + channels_last in the bf16 rows) and
# torch.compile in FP32, with the peak GPU memory of both. CPU (always): dyad's omp step against PyTorch's CPU
# step at the same thread count (default 2; --threads 1 or 2), for the baseline CNN at batch 64 and the
# ResNet-18 at batch 32, and dyad's SGEMM (omp::gemm, 1024^3 and 2048^3) against torch.matmul (MKL). The CPU
# rows run in --rounds rounds (default 3, 2 with --quick), each round dyad then PyTorch for every row, so a
# change in the machine's load hits both sides of a round; the table gives the median of the rounds, their
# range, and the median and range of the per-round ratios. Writes OUT/compare.md (also printed), the raw
# results OUT/dyad_*.json (Google Benchmark) and OUT/pytorch.jsonl, and the logs. PyTorch comes from
# $PYTHON (default python3); without it the table holds dyad's numbers only. --quick: fewer repeats.
# --gpu-only skips the CPU rows; --no-compile skips torch.compile; --compile-only runs dyad's FP32 rows and
# torch.compile's only (scripts/gpu_run.sh splits the GPU comparison into two stages this way).
# Builds bench_train_step in DIR (default build-compare) when it is not there yet. About 6-7 minutes with a
# GPU (torch.compile's compilation is most of PyTorch's share); CPU-only about 2 minutes per round on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
cpu_only=0
gpu_only=0
compile=yes
threads=2
build=build-compare
out=compare-out
quick=0
rounds=
while [ $# -gt 0 ]; do
  case $1 in
    --cpu-only) cpu_only=1 ;;
    --gpu-only) gpu_only=1 ;;
    --no-compile) compile=no ;;
    --compile-only) compile=only ;;
    --threads) threads=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --build) build=$2; shift ;;
    --out) out=$2; shift ;;
    --quick) quick=1 ;;
    *) echo "compare.sh: unknown argument '$1' (see the comment at the top of scripts/compare.sh)" >&2; exit 2 ;;
  esac
  shift
done
case $threads in 1 | 2) ;; *) echo "compare.sh: --threads must be 1 or 2 (the benchmark's CPU cases), got $threads" >&2; exit 2 ;; esac
[ -z "$rounds" ] && { rounds=3; [ $quick -eq 1 ] && rounds=2; }
case $rounds in '' | *[!0-9]*) rounds_ok=0 ;; *) rounds_ok=$((10#$rounds >= 1)) ;; esac
[ $rounds_ok -eq 1 ] || { echo "compare.sh: --rounds must be a whole number of at least 1, got '$rounds'" >&2; exit 2; }
python=${PYTHON:-python3}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
logs=$out/logs
rm -rf "$out"/dyad_*.json "$out/pytorch.jsonl" "$out"/round_*
start=$(date +%s)
log() { echo "[$(($(date +%s) - start)) s] $*"; }

bench=$build/bin/bench_train_step
bench_gemm=$build/bin/bench_gemm
if [ ! -x "$bench" ] || { [ $gpu_only -eq 0 ] && [ ! -x "$bench_gemm" ]; }; then
  log "building bench_train_step and bench_gemm in $build"
  cuda=AUTO
  [ $cpu_only -eq 1 ] && cuda=OFF
  # An existing build directory keeps its own settings; a new one is configured here.
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DDYAD_WITH_CUDA=$cuda -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DCMAKE_CUDA_RUNTIME_LIBRARY=Shared -DDYAD_BUILD_EXAMPLES=OFF >"$logs/configure.log" 2>&1 ||
      { tail -20 "$logs/configure.log"; exit 1; }
  fi
  cmake --build "$build" --target bench_train_step bench_gemm -j "$(nproc)" >"$logs/build.log" 2>&1 ||
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
pt() { # pt NAME ARGS... [--json-to FILE]: one PyTorch run, appended to OUT/pytorch.jsonl (or FILE)
  local name=$1 dest=$out/pytorch.jsonl
  shift
  local args=()
  while [ $# -gt 0 ]; do
    if [ "$1" = --json-to ]; then dest=$2; shift 2; else args+=("$1"); shift; fi
  done
  [ $torch_ok -eq 1 ] || return 0
  log "pytorch $name"
  timeout $pt_limit "$python" bench/pytorch_train_step.py --json "$dest" --repeats $reps "${args[@]}" \
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

# CPU, in rounds: each round runs dyad then PyTorch on every row (the baseline CNN at batch 64, the ResNet-18
# at batch 32, SGEMM at 1024 and 2048), each side once, into OUT/round_R/. Medians over rounds and the
# spread of the per-round ratios are the comparison: single runs on a shared machine vary by 2x.
if [ $gpu_only -eq 0 ]; then
  for round in $(seq 1 "$rounds"); do
    rd=$out/round_$round
    mkdir -p "$rd"
    log "CPU round $round/$rounds: baseline CNN, $threads threads"
    "$bench" --benchmark_filter="BM_train_step/omp:1/threads:$threads/batch:64/model:0/fuse:1" --benchmark_min_time=2 \
      --benchmark_out="$rd/dyad_cpu.json" --benchmark_out_format=json >"$logs/dyad_cpu_$round.log" 2>&1 ||
      log "dyad CPU step FAILED"
    pt "cpu_$round" --device cpu --threads "$threads" --batch 64 --steps 5 --json-to "$rd/pytorch.jsonl"
    # A ResNet-18 step takes seconds on two cores: one window each.
    log "CPU round $round/$rounds: ResNet-18"
    "$bench" --benchmark_filter="BM_train_step/omp:1/threads:$threads/batch:32/model:1/fuse:1" --benchmark_min_time=2 \
      --benchmark_out="$rd/dyad_cpu_resnet18.json" --benchmark_out_format=json \
      >"$logs/dyad_cpu_resnet18_$round.log" 2>&1 || log "dyad CPU ResNet-18 step FAILED"
    pt "cpu_resnet18_$round" --device cpu --model resnet18 --threads "$threads" --batch 32 --steps 2 \
      --json-to "$rd/pytorch.jsonl"
    log "CPU round $round/$rounds: SGEMM"
    "$bench_gemm" --benchmark_filter="gemm_omp/square(1024|2048)/threads:$threads/" --benchmark_min_time=1 \
      --benchmark_out="$rd/dyad_gemm.json" --benchmark_out_format=json >"$logs/dyad_gemm_$round.log" 2>&1 ||
      log "dyad SGEMM FAILED"
    if [ $torch_ok -eq 1 ]; then
      log "pytorch SGEMM"
      timeout $pt_limit "$python" bench/pytorch_gemm.py --threads "$threads" --sizes 1024 2048 --repeats 1 \
        --json "$rd/pytorch_gemm.jsonl" >"$logs/pytorch_gemm_$round.log" 2>&1 || log "pytorch SGEMM FAILED"
    fi
  done
fi

log "table"
"$python" scripts/compare_table.py "$out" >"$out/compare.md" 2>"$logs/table.log" ||
  python3 scripts/compare_table.py "$out" >"$out/compare.md" ||
  { cat "$logs/table.log"; exit 1; }
cat "$out/compare.md"
log "done in $(($(date +%s) - start)) s: $out/compare.md"
