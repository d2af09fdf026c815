#!/usr/bin/env bash
# Data-parallel scaling and overlap on this machine (bench/bench_dist.cpp under mpirun), in interleaved
# rounds: each round runs 1 rank x 1 thread, 2 ranks x 1 thread and 1 rank x 2 threads, then the overlap
# benchmark on 2 ranks x 1 thread; the table gives medians over the rounds with the per-round range, and
# the bucket profiles for scripts/dist_model.py.
#   bash scripts/bench_dist.sh [--build DIR] [--out DIR] [--rounds N] [--filter REGEX]
set -euo pipefail
build=build
out=dyad-bench-dist
rounds=3
filter=""
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    *) echo "bench_dist.sh: unknown argument '$1' (--build DIR, --out DIR, --rounds N, --filter REGEX)" >&2; exit 2 ;;
  esac
done
bench=$build/bin/bench_dist
[ -x "$bench" ] || { echo "bench_dist.sh: $bench not found: build the benchmarks first" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "bench_dist.sh: mpirun not found (bash scripts/setup.sh installs Open MPI)" >&2; exit 1; }
mkdir -p "$out"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# --bind-to none: a rank's OpenMP threads may use any core (mpirun binds a rank to one core by default).
run() { # run NAME RANKS THREADS FILTER
  echo "== round $r: $1 ($2 ranks x $3 threads)"
  OMP_NUM_THREADS=$3 DYAD_BENCH_DIST_PROFILE="$out/profile" \
    mpirun -np "$2" --oversubscribe --bind-to none "$bench" --benchmark_filter="$4" \
    --benchmark_out="$out/round_$r.$1.json" --benchmark_out_format=json
}
step="BM_dist_step${filter:+.*$filter}"
for r in $(seq 1 "$rounds"); do
  run r1t1 1 1 "$step"
  run r2t1 2 1 "$step"
  run r1t2 1 2 "$step"
  run overlap 2 1 "BM_dist_overlap${filter:+.*$filter}"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(r, name):
    try:
        with open(f"{out}/round_{r}.{name}.json") as f:
            return {b["name"]: b for b in json.load(f)["benchmarks"]}
    except FileNotFoundError:
        return {}
def med(v):
    return statistics.median(v) if v else float("nan")
rows = []
for model, b_small, b_big in (("0", 64, 128), ("1", 16, 32)):
    key = lambda b: f"BM_dist_step/model:{model}/batch:{b}/iterations"
    def rate(r, name, b):
        for k, v in load(r, name).items():
            if k.startswith(f"BM_dist_step/model:{model}/batch:{b}/"):
                return v["img/s"]
        return None
    one, two, thr, thr_same = [], [], [], []
    for r in range(1, rounds + 1):
        a, b, c, d = rate(r, "r1t1", b_small), rate(r, "r2t1", b_small), rate(r, "r1t2", b_big), rate(r, "r1t2", b_small)
        if None in (a, b, c, d):
            continue
        one.append(a); two.append(b); thr.append(c); thr_same.append(d)
    if not one:
        continue
    name = "baseline" if model == "0" else "resnet18"
    s1 = [y / x for x, y in zip(one, two)]
    s2 = [y / x for x, y in zip(thr, two)]
    s3 = [y / x for x, y in zip(thr_same, two)]
    print(f"{name}: img/s 1x1 (batch {b_small}) {med(one):.1f}, 2x1 (batch {b_small} per rank) {med(two):.1f}, "
          f"1x2 (batch {b_big}) {med(thr):.1f}, 1x2 (batch {b_small}) {med(thr_same):.1f}")
    print(f"  2x1 / 1x1: {med(s1):.2f}x ({min(s1):.2f}-{max(s1):.2f});  2x1 / 1x2 same global batch: "
          f"{med(s2):.2f}x ({min(s2):.2f}-{max(s2):.2f});  2x1 / 1x2 batch {b_small}: {med(s3):.2f}x")
for r in range(1, rounds + 1):
    for k, v in load(r, "overlap").items():
        if v.get("run_type") == "iteration":
            print(f"round {r} {k.split('/iterations')[0]}: none {v['none_ms']:.1f} ms, overlapped {v['overlap_ms']:.1f} ms "
                  f"(+{v['overhead_pct']:.1f}%), after backward {v['after_ms']:.1f} ms (+{v['after_overhead_pct']:.1f}%), "
                  f"wait {v['wait_ms']:.2f} ms, {int(v['buckets'])} buckets")
PY
