#!/usr/bin/env python3
"""PyTorch reference for bench_optim's CPU cases: one torch.optim.AdamW step (lr 1e-3, weight decay 0.05, the
foreach implementation PyTorch picks by default, and the single-tensor one) and torch.nn.utils.clip_grad_norm_
(2-norm, max_norm high enough that nothing is scaled) on the parameters of the models dyad's models:: build
(scripts/torch_models.py), with random gradients, at a given thread count.

  python3 bench/pytorch_optim.py --threads 2 --json OUT.jsonl

Prints one line per case with the median time of `--steps` calls; --json FILE appends one JSON object per case.
Development-time only (PyTorch from PyPI)."""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_models import ResNet18Small, baseline_cnn  # noqa: E402  (the models dyad builds)


def params_of(model):
    ps = [p for p in model.parameters()]
    for p in ps:
        p.grad = torch.randn_like(p)
    return ps


def median_ms(fn, steps):
    for _ in range(3):  # warm-up: optimizer state, thread pool
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", help="append one JSON object per case to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for name, model in (("cnn", baseline_cnn()), ("resnet", ResNet18Small())):
        for foreach in (True, False):
            ps = params_of(model)
            opt = torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.05, foreach=foreach)
            with torch.no_grad():
                results.append((f"adamw_{name}" + ("" if foreach else "_single"), median_ms(opt.step, args.steps)))
        if name == "resnet":
            ps = params_of(model)
            results.append(("clip_grad_norm_resnet",
                            median_ms(lambda: torch.nn.utils.clip_grad_norm_(ps, 1e30), args.steps)))
    for case, ms in results:
        print(f"{case} threads {args.threads}: {ms:.2f} ms (median of {args.steps})", flush=True)
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"case": case, "threads": args.threads, "ms_median": ms,
                                    "version": torch.__version__}) + "\n")


if __name__ == "__main__":
    main()
