#!/usr/bin/env python3
"""PyTorch reference for bench_gemm's square cases: C = A B in FP32 through torch.matmul (MKL or oneDNN on the
CPU, as PyTorch's wheels ship it), on the same sizes and thread count, timed the way Google Benchmark times
dyad's omp::gemm (wall time per call over a window of calls after a warm-up).

  python3 bench/pytorch_gemm.py --threads 2 --sizes 1024 2048 --json OUT.jsonl

Prints one line per size with the best and median GFLOP/s of `--repeats` windows; --json FILE appends one
JSON object per size (used by scripts/compare.sh). Development-time only (PyTorch from PyPI)."""
import argparse
import json
import statistics
import time

import torch


def run(n, threads, repeats, min_time):
    torch.manual_seed(0)
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    c = torch.empty(n, n, dtype=torch.float32)
    flop = 2.0 * n * n * n
    for _ in range(3):  # warm-up: thread pool, packing buffers, caches
        torch.matmul(a, b, out=c)
    rates = []
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            torch.matmul(a, b, out=c)
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        rates.append(flop * calls / elapsed / 1e9)
    return {"op": "sgemm", "n": n, "threads": threads, "gflops_best": max(rates),
            "gflops_median": statistics.median(rates), "gflops": rates, "version": torch.__version__,
            "blas": "mkl" if torch.backends.mkl.is_available() else "other"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per timed window")
    p.add_argument("--json", help="append one JSON object per size to this file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for n in args.sizes:
        r = run(n, args.threads, args.repeats, args.min_time)
        print(f"sgemm {n}^3 threads {args.threads}: best {r['gflops_best']:.1f} GFLOP/s, "
              f"median {r['gflops_median']:.1f} ({r['blas']}, torch {r['version']})", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
