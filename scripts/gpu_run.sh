#!/usr/bin/env bash
# Runs dyad on the GPU machine from the pack that scripts/gpu_pack.sh built elsewhere: no configure, no
# build. Each stage stays well under 5 minutes, writes its part of OUT/summary.md (printed last) and keeps
# full logs in OUT; several stages may run in one call, in the order given.
#
#   bash scripts/gpu_run.sh STAGE [STAGE ...]     (from the repository root, with the pack in gpu-pack/)
#
#   smoke     nvidia-smi, where the CUDA libraries load from and their versions (against those the pack was
#             built with), the runtime tests, the fault test                                   (~1 min)
#   tests     every CUDA test case, with durations                                   (cap 280 s, ~2-3 min)
#   sanitize  compute-sanitizer on dyad's own kernels (cuBLAS and cuDNN kernels excluded): memcheck with
#             leak checking and initcheck on every CUDA test but the whole-trainer one, racecheck and
#             synccheck on the families with shared memory or warp shuffles; the four run side by side,
#             each capped                                                                   (cap 250 s)
#   perf      dyad's training step next to PyTorch eager on the same card (scripts/compare.sh --quick
#             --gpu-only --no-compile), the pipeline benchmark, one trainer epoch with --device cpu,cuda
#                                                                                           (~3-4 min)
#   compile   dyad's FP32 step next to torch.compile (compare.sh --compile-only)                (~2-3 min)
#   study     the acceleration study on every backend, the GPU in fp32, tf32 and bf16 (dyad-tinyimagenet
#             study, default budget); its folder comes back as OUT/study.tar.gz              (~2-3 min)
#
# Environment: OUT (default gpu-run-out), PACK (default gpu-pack). Without a GPU it says so in one line and
# exits 77. Exit status otherwise: 0 when every stage passed, 1 when one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-run-out}
pack=${PACK:-gpu-pack}
[ $# -gt 0 ] || { echo "usage: bash scripts/gpu_run.sh smoke|tests|sanitize|perf|compile|study [...]" >&2; exit 2; }
for stage in "$@"; do
  case $stage in
    smoke | tests | sanitize | perf | compile | study) ;;
    *) echo "gpu_run.sh: unknown stage '$stage' (smoke, tests, sanitize, perf, compile or study)" >&2; exit 2 ;;
  esac
done
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  echo "gpu_run.sh: no NVIDIA GPU on this machine (nvidia-smi finds none): nothing to run here; carry the pack to the GPU machine"
  exit 77
fi
if [ ! -x "$pack/bin/dyad_cuda_tests" ]; then
  echo "gpu_run.sh: no pack in $pack (build it with bash scripts/gpu_pack.sh on the build machine and carry $pack)"
  exit 2
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.log "$out"/*.md "$out"/*.tar.gz  # results of an earlier run into the same folder
pack=$(cd "$pack" && pwd)
bin=$pack/bin
summary=$out/summary.md
# The CUDA libraries: the pack's run path finds libdyad and Google Benchmark; the toolkit's folders are
# added for the CUDA runtime and cuBLAS where the loader does not know them (cuDNN is in the system folder).
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/lib:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export NVIDIA_TF32_OVERRIDE=0  # strict FP32 in every test, whatever a library defaults to
status=0
t_all=$(date +%s)

note() { echo "$*" >>"$summary"; }
# run LOG LIMIT CMD...: runs CMD with its output appended to LOG under a time limit; sets rc and secs.
run() {
  local log=$1 limit=$2
  shift 2
  local t0=$(date +%s)
  echo "\$ $*" >>"$log"
  timeout "$limit" "$@" >>"$log" 2>&1
  rc=$?
  secs=$(($(date +%s) - t0))
  echo "[exit $rc after $secs s]" >>"$log"
  return $rc
}
verdict() { # verdict RC LIMIT: ok / FAILED (exit N) / TIMED OUT after LIMIT s
  case $1 in
    0) echo "ok" ;;
    124 | 137) echo "TIMED OUT after $2 s" ;;
    77) echo "NO DEVICE (exit 77: the CUDA runtime sees no usable GPU)" ;;
    *) echo "FAILED (exit $1)" ;;
  esac
}

: >"$summary"
note "# dyad on the GPU, $(date -u '+%Y-%m-%d %H:%M UTC'): $*"
note ""
note "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
note "- pack: $(grep -m1 '^- commit:' "$pack/MANIFEST.md" | sed 's/^- commit: //'), built $(grep -m1 '^- made:' "$pack/MANIFEST.md" | sed 's/^- made: //; s/ on .*//')"
note "- host: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

stage_smoke() {
  local log=$out/smoke.log
  note ""
  note "## smoke"
  nvidia-smi >>"$log" 2>&1
  # Where each CUDA library comes from on this machine.
  ldd "$bin/dyad_cuda_tests" >>"$log" 2>&1
  local libs
  libs=$(ldd "$bin/dyad_cuda_tests" | awk '/libcudart|libcublas\.|libcudnn\.|libdyad|not found/ {print $1 " -> " $3}' | tr '\n' ';')
  note "- libraries: $libs"
  if ldd "$bin/dyad_cuda_tests" | grep -q "not found"; then
    note "- a library is missing (see smoke.log): nothing else can run"
    status=1
    return
  fi
  run "$log" 120 "$bin/dyad_cuda_tests" "[runtime]" --durations yes
  local r=$rc
  note "- versions loaded: $(grep -m1 '^loaded:' "$log" | sed 's/^loaded: //')"
  note "- built with: $(grep -m1 '^built with:' "$log" | sed 's/^built with: //')"
  note "- runtime tests: $(verdict $r 120) in $secs s: $(grep -E '^(All tests passed|test cases:)' "$log" | tail -1)"
  [ $r -eq 0 ] || status=1
  run "$log" 60 "$bin/dyad_cuda_fault_test"
  r=$rc
  note "- fault test: $(verdict $r 60): $(grep -E '^(OK|FAILED)' "$log" | tail -1)"
  [ $r -eq 0 ] || status=1
}

stage_tests() {
  local log=$out/tests.log
  note ""
  note "## tests"
  run "$log" 280 "$bin/dyad_cuda_tests" --durations yes
  local r=$rc
  note "- every CUDA test: $(verdict $r 280) in $secs s: $(grep -E '^(All tests passed|test cases:)' "$log" | tail -1)"
  [ $r -eq 0 ] || status=1
  # The failed assertions' locations, and the slowest cases.
  grep -E "^[^ ].*:[0-9]+: FAILED:" "$log" | head -20 | sed 's/^/  - /' >>"$summary"
  note "- slowest test cases (s):"
  grep -E "^[0-9]+\.[0-9]+ s: " "$log" | sort -rn | head -8 | sed 's/^/  - /' >>"$summary"
}

stage_sanitize() {
  note ""
  note "## sanitize"
  if ! command -v compute-sanitizer >/dev/null; then
    note "- compute-sanitizer: not found"
    status=1
    return
  fi
  # Only dyad's kernels are instrumented (their names are in namespace dyad): a library's internals cannot
  # fail dyad's run, and the rest runs at full speed. API errors inside cuBLAS and cuDNN (they probe the
  # device) are not reported; dyad checks every status it gets, so its own show up as failed tests.
  local filter=(--kernel-name kns=dyad)
  compute-sanitizer --help 2>/dev/null | grep -q -- "--kernel-name" || filter=(--filter kns=dyad)
  local limit=250 tool pids=() tools=(memcheck initcheck racecheck synccheck)
  for tool in "${tools[@]}"; do
    local extra=() cases="~[train]"
    case $tool in
      memcheck) extra=(--leak-check full) ;;
      racecheck | synccheck) cases="[reduce],[gemm],[loss],[norm],[pool],[conv]" ;;
    esac
    (
      log=$out/sanitize-$tool.log
      : >"$log"
      run "$log" $limit compute-sanitizer --tool "$tool" "${filter[@]}" --report-api-errors no "${extra[@]}" \
        --error-exitcode 99 --print-limit 50 "$bin/dyad_cuda_tests" "$cases"
      echo "$rc $secs" >"$out/.rc-$tool"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  for tool in "${tools[@]}"; do
    local r s log=$out/sanitize-$tool.log
    read -r r s <"$out/.rc-$tool"
    rm -f "$out/.rc-$tool"
    note "- $tool: $(verdict "$r" $limit) in $s s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tail -1); tests: $(grep -E '^(All tests passed|test cases:)' "$log" | tail -1)"
    [ "$r" = 0 ] || status=1
  done
}

# compare NAME LIMIT ARGS...: scripts/compare.sh from the pack (GPU rows only), its table into OUT/NAME.md
# and the summary, its raw results into OUT/NAME-raw.tar.gz, its log into OUT/NAME.log.
compare() {
  local name=$1 limit=$2
  shift 2
  rm -rf "/tmp/dyad-$name"
  run "$out/$name.log" "$limit" bash scripts/compare.sh --quick --gpu-only "$@" --build "$pack" --out "/tmp/dyad-$name"
  note "- compare.sh $*: $(verdict $rc "$limit") in $secs s"
  if [ -f "/tmp/dyad-$name/compare.md" ]; then
    cp "/tmp/dyad-$name/compare.md" "$out/$name.md"
    cat "/tmp/dyad-$name/compare.md" >>"$summary"
    tar -czf "$out/$name-raw.tar.gz" -C /tmp "dyad-$name"
  else
    status=1
  fi
}

stage_perf() {
  local log=$out/perf.log
  note ""
  note "## perf"
  compare perf 240 --no-compile
  run "$log" 60 "$bin/bench_pipeline" --benchmark_filter="BM_pipeline/1/" --benchmark_min_time=1
  note "- bench_pipeline: $(verdict $rc 60)"
  grep -E "^BM_" "$log" | sed 's/^/    /' >>"$summary"
  # One epoch of the trainer on the CPU and on the GPU from the same weights: the speed-up it reports.
  rm -rf /tmp/dyad-trainer
  local data=$pack/data/fashion-mnist
  [ -d "$data" ] || data=generated
  run "$log" 150 "$bin/dyad-tinyimagenet" --data "$data" --epochs 1 --device cpu,cuda --out /tmp/dyad-trainer
  note "- trainer, one epoch on $(basename "$data"): $(verdict $rc 150) in $secs s"
  [ $rc -eq 0 ] || status=1
  grep -E "^(cpu|cuda) +epoch|speed-up|^backend" "$log" | sed 's/^/    /' >>"$summary"
}

stage_study() {
  local log=$out/study.log
  note ""
  note "## study"
  rm -rf /tmp/dyad-study
  run "$log" 280 "$bin/dyad-tinyimagenet" study --out /tmp/dyad-study
  note "- study: $(verdict $rc 280) in $secs s"
  [ $rc -eq 0 ] || status=1
  grep -E " over naive: |stopped|ran eagerly|profile" "$log" | sed 's/^/    /' >>"$summary"
  [ -d /tmp/dyad-study ] && tar -C /tmp -czf "$out/study.tar.gz" dyad-study
}

stage_compile() {
  note ""
  note "## compile"
  compare compile 280 --compile-only
}

for stage in "$@"; do
  t0=$(date +%s)
  "stage_$stage"
  note "- ($stage: $(($(date +%s) - t0)) s)"
done
note ""
note "Total: $(($(date +%s) - t_all)) s. Result: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
cat "$summary"
exit $status
