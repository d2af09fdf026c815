#!/usr/bin/env bash
# scripts/compare_table.py's CPU rows on made-up rounds whose medians, ranges and per-round ratios are known,
# and scripts/compare.sh's refusal of a bad --rounds. No benchmark runs. Exits 77 (skipped) without python3.
#   bash tests/scripts/test_compare_table.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1
work=$2
command -v python3 >/dev/null || { echo "python3 not found: skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
fails=0
expect() { # expect WHAT TEXT PATTERN
  if echo "$2" | grep -qF -- "$3"; then
    echo "ok: $1"
  else
    echo "FAILED: $1: no line with '$3' in:"
    echo "$2"
    fails=$((fails + 1))
  fi
}
# round R DYAD_BASELINE TORCH_BASELINE DYAD_GFLOPS TORCH_GFLOPS [TORCH_RESNET]
round() {
  local d=$work/round_$1
  mkdir -p "$d"
  cat >"$d/dyad_cpu.json" <<JSON
{"context": {}, "benchmarks": [
 {"name": "BM_train_step/omp:1/threads:2/batch:64/model:0/fuse:1/real_time", "run_type": "iteration", "img/s": $2,
  "pct_floor": 0.${1}2},
 {"name": "BM_train_step/omp:1/threads:2/batch:64/model:0/fuse:1/real_time_mean", "run_type": "aggregate", "img/s": 1}]}
JSON
  cat >"$d/dyad_cpu_resnet18.json" <<JSON
{"context": {}, "benchmarks": [
 {"name": "BM_train_step/omp:1/threads:2/batch:32/model:1/fuse:1/real_time", "run_type": "iteration", "img/s": 12}]}
JSON
  cat >"$d/dyad_gemm.json" <<JSON
{"context": {}, "benchmarks": [
 {"name": "gemm_omp/square1024/threads:2/real_time", "run_type": "iteration", "FLOP/s": ${4}e9,
  "pct_peak": 0.${1}5, "label": "avx2"}]}
JSON
  echo "{\"device\": \"cpu\", \"model\": \"baseline\", \"batch\": 64, \"threads\": 2, \"img_s_median\": $3, \"img_s_best\": 9999, \"version\": \"2.15.0\"}" >"$d/pytorch.jsonl"
  if [ -n "${6:-}" ]; then
    echo "{\"device\": \"cpu\", \"model\": \"resnet18\", \"batch\": 32, \"threads\": 2, \"img_s_median\": $6, \"img_s_best\": 9999, \"version\": \"2.15.0\"}" >>"$d/pytorch.jsonl"
  fi
  echo "{\"op\": \"sgemm\", \"n\": 1024, \"threads\": 2, \"gflops_median\": $5, \"gflops_best\": 9999, \"version\": \"2.15.0\", \"blas\": \"mkl\"}" >"$d/pytorch_gemm.jsonl"
}
# Baseline: dyad 500, 600, 400 against 250, 200, 300: ratios 2, 3, 1.33. SGEMM: 100, 150, 200 GFLOP/s against
# 200, 150, 100: ratios 0.5, 1, 2. ResNet: PyTorch's value is missing in round 2 (a failed run): two ratios,
# 12 / 10 and 12 / 8.
round 1 500 250 100 200 10
round 2 600 200 150 150
round 3 400 300 200 100 8
table=$(python3 "$src/scripts/compare_table.py" "$work" 2>&1)
expect "rounds counted" "$table" "### CPU (3 rounds"
expect "baseline medians, ranges and the median ratio" "$table" \
  "| baseline step, batch 64, img/s | 2 | 500.0 (400.0-600.0) | 250.0 (200.0-300.0) | **2.00x** (1.33-3.00) |"
expect "SGEMM from bench_gemm's FLOP/s and torch.matmul's GFLOP/s" "$table" \
  "| SGEMM 1024^3, GFLOP/s (PyTorch: torch.matmul) | 2 | 150 (100-200) | 150 (100-200) | **1.00x** (0.50-2.00) |"
expect "a round with one side missing has no ratio" "$table" \
  "| resnet18 step, batch 32, img/s | 2 | 12.0 (12.0-12.0) | 9.0 (8.0-10.0) | **1.35x** (1.20-1.50) |"
expect "PyTorch's version and BLAS" "$table" "2.15.0, CPU BLAS mkl"
# pct_peak 0.15, 0.25, 0.35 over the rounds: the median, with the kernel's ISA.
expect "SGEMM's share of the FMA peak" "$table" "1024^3 on 2 threads (avx2): 25%"
# pct_floor 0.12, 0.22, 0.32 over the rounds: the median; the ResNet's rounds carry none and get no entry.
expect "the step's share of its compute floor" "$table" "rounds): baseline batch 64 on 2 threads: 22%"

# GPU rows (a separate output folder): the default step, the channels_last one beside it, and the same step
# without the graph; the channels_last rows get their own table and stay out of the main one and the levers.
gpu=$work/gpu
mkdir -p "$gpu"
cat >"$gpu/dyad_gpu.json" <<JSON
{"context": {}, "benchmarks": [
 {"name": "BM_train_step_cuda/batch:256/precision:2/model:0/graph:1/fuse:1/nhwc:0/manual_time", "run_type": "iteration",
  "img/s": 1000, "peak_MiB": 500},
 {"name": "BM_train_step_cuda/batch:256/precision:2/model:0/graph:1/fuse:1/nhwc:1/manual_time", "run_type": "iteration",
  "img/s": 1500, "peak_MiB": 400},
 {"name": "BM_train_step_cuda/batch:256/precision:2/model:0/graph:0/fuse:1/nhwc:0/manual_time", "run_type": "iteration",
  "img/s": 800, "peak_MiB": 500}]}
JSON
echo '{"device": "cuda", "model": "baseline", "batch": 256, "precision": "bf16", "mode": "eager", "img_s_best": 1200, "img_s_median": 1200, "peak_mib": 450}' >"$gpu/pytorch.jsonl"
table=$(python3 "$src/scripts/compare_table.py" "$gpu" 2>&1)
expect "the default bf16 row against PyTorch's autocast channels_last" "$table" \
  "| baseline | 256 | bf16 (PyTorch: autocast, channels_last) | 1,000 | 500 | 1,200 | 450 | **0.83x** |"
expect "the graph lever" "$table" "| baseline | 256 | bf16 | CUDA graph | 800 | 1,000 | **1.25x** |"
expect "the channels_last row beside the NCHW one and PyTorch" "$table" \
  "| baseline | 256 | bf16 | 1,000 | 1,500 | 400 | **1.50x** | 1,200 | **1.25x** |"

out=$(bash "$src/scripts/compare.sh" --rounds 0 --out "$work/unused" 2>&1)
rc=$?
if [ $rc -eq 2 ] && echo "$out" | grep -q -- "--rounds must be a whole number"; then
  echo "ok: --rounds 0 refused"
else
  echo "FAILED: --rounds 0: exit $rc, output: $out"
  fails=$((fails + 1))
fi
[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
