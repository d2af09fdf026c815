#!/usr/bin/env bash
# dyad-tinyimagenet under `mpirun -np 2` (one thread per rank) against one process at the same global batch,
# on 4096 Fashion-MNIST images for 3 epochs: the same validation top-1 within noise (three seeds of either
# differ by up to 0.02: docs/distributed.md), one rank printing, the lead writing the files, and the
# two-rank checkpoint resumed by one process. Exits 77 (skipped) without Fashion-MNIST.
#   bash tests/scripts/test_trainer_mpi.sh TRAINER MPIEXEC WORK_DIR
set -uo pipefail
trainer=$1
mpiexec=$2
work=$3
[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
  [ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte ] ||
  { echo "Fashion-MNIST is not installed (bash scripts/setup.sh): skipped"; exit 77; }
rm -rf "$work"
mkdir -p "$work"
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
args=(--device cpu --limit-train 4096 --limit-val 1000 --no-profile --seed 1)
fails=0
check() { # check WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; fails=$((fails + 1)); fi
}
top1() { grep -E "^cpu +epoch 3/3 +train" "$1" | sed -E 's/.*top-1 ([0-9.]+).*/\1/'; }

"$mpiexec" -np 2 --oversubscribe "$trainer" "${args[@]}" --epochs 3 --out "$work/two" >"$work/two.log" 2>&1
rc=$?
cat "$work/two.log"
check "the two-rank run succeeds" test $rc -eq 0
check "it says how the batch is split" grep -q "data-parallel over 2 ranks: global batch 128 = 2 x 64 per rank" "$work/two.log"
check "only the lead prints (one line per epoch)" test "$(grep -cE '^cpu +epoch [0-9]/3 +train' "$work/two.log")" -eq 3
check "the report names the ranks and the scaling" grep -q "2 MPI ranks" "$work/two/report.html"
check "the checkpoint records the world size" grep -aq '"world_size":"2"' "$work/two/cpu.safetensors"
check "no rank left a temporary file" test -z "$(find "$work/two" -name '*.tmp.*')"

"$trainer" "${args[@]}" --epochs 3 --out "$work/one" >"$work/one.log" 2>&1
check "the one-process run succeeds" test $? -eq 0
a=$(top1 "$work/two.log")
b=$(top1 "$work/one.log")
echo "validation top-1: 2 ranks $a, 1 process $b"
check "the same accuracy within 0.03" awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= 0.03) }'

# The two-rank checkpoint continues in one process (a fourth epoch), saying what differs.
"$trainer" "${args[@]}" --epochs 4 --out "$work/resumed" --resume "$work/two/cpu.safetensors" >"$work/resumed.log" 2>&1
rc=$?
cat "$work/resumed.log"
check "one process resumes the two-rank checkpoint" test $rc -eq 0
check "it says the world size changed" grep -q "written by 2 rank(s), this run has 1" "$work/resumed.log"
check "it trains the fourth epoch" grep -qE "^cpu +epoch 4/4 +train" "$work/resumed.log"
[ $fails -eq 0 ] && echo "all passed" || { echo "$fails failed"; exit 1; }
