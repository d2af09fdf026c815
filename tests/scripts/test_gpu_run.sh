#!/usr/bin/env bash
# scripts/gpu_run.sh without a GPU: the stages' control flow and their summaries, checked against stand-ins
# (an nvidia-smi that reports a GPU, a compute-sanitizer that runs the program and prints a summary, and a
# pack whose programs print what the real ones print), so a mistake in the runner is found here and not
# in the minutes a GPU is lent. Also: with no GPU the runner says so in one line and exits 77.
#   bash tests/scripts/test_gpu_run.sh SOURCE_DIR WORK_DIR
set -uo pipefail
src=$1
work=$2
rm -rf "$work"
mkdir -p "$work/fakebin" "$work/pack/bin" "$work/pack/lib"
fails=0
expect() { # expect FILE PATTERN WHAT
  if grep -qE -- "$2" "$1"; then echo "ok: $3"; else
    echo "FAILED: $3 (no /$2/ in $1)"
    fails=$((fails + 1))
  fi
}

# 1. No GPU: one line, exit 77 (PATH without any nvidia-smi; skipped where the system has one).
out=$(PATH=/usr/bin:/bin bash "$src/scripts/gpu_run.sh" smoke 2>&1)
rc=$?
if PATH=/usr/bin:/bin command -v nvidia-smi >/dev/null; then
  echo "skipped: this machine has an nvidia-smi in /usr/bin"
elif [ $rc -eq 77 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "no NVIDIA GPU"; then
  echo "ok: no GPU -> one line, exit 77"
else
  echo "FAILED: no GPU gave exit $rc and: $out"
  fails=$((fails + 1))
fi

# 2. Stand-ins.
cat >"$work/fakebin/nvidia-smi" <<'EOF'
#!/bin/sh
case "$1" in
  -L) echo "GPU 0: Stand-in GPU (UUID: GPU-0)" ;;
  --query-gpu*) echo "Stand-in GPU, 580.00, 81559 MiB, 9.0" ;;
  *) echo "stand-in nvidia-smi" ;;
esac
EOF
cat >"$work/fakebin/compute-sanitizer" <<'EOF'
#!/bin/bash
[ "$1" = "--help" ] && { echo "  --kernel-name <filter>"; exit 0; }
tool=""
while [ $# -gt 0 ]; do
  case $1 in
    --tool) tool=$2; shift 2 ;;
    --leak-check | --kernel-name | --report-api-errors | --error-exitcode | --print-limit) shift 2 ;;
    *) break ;;
  esac
done
"$@"
rc=$?
if [ "$tool" = racecheck ]; then echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"
else echo "========= ERROR SUMMARY: 0 errors"; fi
exit $rc
EOF
# The CUDA tests: pass, except that a filter naming [pool] fails one assertion.
cat >"$work/pack/bin/dyad_cuda_tests" <<'EOF'
#!/bin/sh
echo "CUDA device 0: Stand-in GPU"
echo "loaded: CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0, cuDNN 9.14.0"
echo "built with: CUDA 13.0, cuBLAS 13.1.0, cuDNN 9.19.0"
case "$*" in
  *pool*)
    echo "/src/tests/cuda/test_pool.cpp:42: FAILED:"
    echo "0.250 s: cuda max_pool2d"
    echo "test cases: 3 | 2 passed | 1 failed"
    exit 1 ;;
esac
echo "1.500 s: cuda conv2d kernels match naive on the shared cases"
echo "0.020 s: tensors round-trip through GPU memory"
echo "All tests passed (120 assertions in 7 test cases)"
EOF
printf '#!/bin/sh\necho "first error: ... A GPU kernel faulted ..."\necho OK\n' >"$work/pack/bin/dyad_cuda_fault_test"
chmod +x "$work"/fakebin/* "$work"/pack/bin/*
printf '# dyad GPU pack\n\n- commit: abc1234\n- made: 2026-01-01 00:00 UTC on a CPU, 2 cores\n' >"$work/pack/MANIFEST.md"

# 3. smoke and tests pass; sanitize fails only where the [pool] cases run (racecheck and synccheck).
(cd "$src" && PATH="$work/fakebin:$PATH" OUT="$work/out" PACK="$work/pack" bash scripts/gpu_run.sh smoke tests sanitize) \
  >"$work/run.log" 2>&1
rc=$?
s=$work/out/summary.md
[ $rc -eq 1 ] && echo "ok: a failed stage gives exit 1" || { echo "FAILED: exit $rc, expected 1"; fails=$((fails + 1)); }
expect "$s" "^- GPU: Stand-in GPU, 580.00" "the GPU line"
expect "$s" "^- pack: abc1234, built 2026-01-01 00:00 UTC" "the pack's commit and date"
expect "$s" "^- versions loaded: CUDA runtime 13.0, driver 13.0, cuBLAS 13.0.0, cuDNN 9.14.0" "loaded versions"
expect "$s" "^- built with: CUDA 13.0, cuBLAS 13.1.0, cuDNN 9.19.0" "built-with versions"
expect "$s" "^- runtime tests: ok in [0-9]+ s: All tests passed" "runtime tests verdict"
expect "$s" "^- fault test: ok: OK" "fault test verdict"
expect "$s" "^- every CUDA test: ok in [0-9]+ s: All tests passed \(120 assertions in 7 test cases\)" "tests verdict"
expect "$s" "^  - 1.500 s: cuda conv2d kernels" "slowest test first"
expect "$s" "^- memcheck: ok in [0-9]+ s: ========= ERROR SUMMARY: 0 errors; tests: All tests passed" "memcheck"
expect "$s" "^- initcheck: ok" "initcheck"
expect "$s" "^- racecheck: FAILED \(exit 1\) in [0-9]+ s: ========= RACECHECK SUMMARY: 0 hazards" "racecheck failure"
expect "$s" "^- synccheck: FAILED \(exit 1\).*test cases: 3 \| 2 passed \| 1 failed" "synccheck failure"
expect "$s" "Result: FAIL" "overall result"
for f in summary.md smoke.log tests.log sanitize-memcheck.log sanitize-initcheck.log sanitize-racecheck.log \
  sanitize-synccheck.log; do
  [ -f "$work/out/$f" ] || { echo "FAILED: no $f"; fails=$((fails + 1)); }
done
n=$(find "$work/out" -type f | wc -l)
[ "$n" -le 8 ] && echo "ok: $n files in OUT (the device tool returns 8)" || { echo "FAILED: $n files in OUT"; fails=$((fails + 1)); }

# 4. A missing library stops the smoke stage with a clear line.
printf '#!/bin/sh\nexit 0\n' >"$work/fakebin/ldd"
printf '#!/bin/sh\necho "\tlibcudnn.so.9 => not found"\n' >"$work/fakebin/ldd"
chmod +x "$work/fakebin/ldd"
(cd "$src" && PATH="$work/fakebin:$PATH" OUT="$work/out2" PACK="$work/pack" bash scripts/gpu_run.sh smoke) \
  >"$work/run2.log" 2>&1
expect "$work/out2/summary.md" "a library is missing" "a missing library is named"

if [ $fails -eq 0 ]; then echo "all checks passed"; else echo "$fails check(s) failed (see $work)"; fi
[ $fails -eq 0 ]
