#!/usr/bin/env python3
"""PyTorch reference for bench_train_step: the same training step (64x64x3 input, 200 classes, SGD momentum
0.9, weight decay 5e-4, cross-entropy, random data already in memory) on the same two models: the baseline
CNN and the ResNet-18 for small images (3x3 stride-1 stem, no stem max-pool), as dyad's models:: build them.

  python3 bench/pytorch_train_step.py --threads 2 --batch 64                     # CPU
  python3 bench/pytorch_train_step.py --device cuda --batch 128 256              # GPU, strict FP32
  python3 bench/pytorch_train_step.py --device cuda --batch 256 --precision tf32
  python3 bench/pytorch_train_step.py --device cuda --batch 256 --precision bf16 --channels-last
  python3 bench/pytorch_train_step.py --device cuda --model resnet18 --batch 256 --compile

On the GPU: cudnn.benchmark on, TF32 off unless --precision tf32 (bf16: autocast), timed with CUDA events
over `--steps` steps per repeat, and the peak memory PyTorch's allocator reports (model, data, activations,
gradients, optimizer state). --compile wraps the model in torch.compile (the warm-up steps include the
compilation). Prints one line per repeat and a summary line per batch with the best and median img/s;
--json FILE appends one JSON object per batch (used by scripts/compare.sh). Development-time only (PyTorch
from PyPI)."""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from torch_models import ResNet18Small, baseline_cnn  # noqa: E402  (the models dyad builds)


def make_model(name):
    return baseline_cnn() if name == "baseline" else ResNet18Small()


def run(args, batch):
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = make_model(args.model).to(dev)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 64, 64, device=dev).to(memory_format=fmt)
    y = (torch.arange(batch, device=dev) * 37) % 200
    autocast = args.precision == "bf16" and dev.type == "cuda"
    forward = torch.compile(model) if args.compile else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    warmup_s = time.perf_counter() - t0
    rates = []
    for r in range(args.repeats):
        if dev.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.steps):
                step()
            stop.record()
            stop.synchronize()
            dt = start.elapsed_time(stop) / 1e3 / args.steps
        else:
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            dt = (time.perf_counter() - t0) / args.steps
        rates.append(batch / dt)
        print(f"repeat {r}: {dt * 1e3:.2f} ms/step, {batch / dt:.1f} img/s")
    where = f"{dev.type} threads={args.threads}" if dev.type == "cpu" else \
        f"{torch.cuda.get_device_name()} {args.precision}"
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    mode = ("compile" if args.compile else "eager") + (" channels_last" if args.channels_last else "")
    print(f"pytorch {torch.__version__} {args.model} {mode} {where} batch={batch}: "
          f"best {max(rates):.1f} img/s, median {statistics.median(rates):.1f} img/s"
          + (f", peak {peak:.0f} MiB" if peak is not None else "") + f", warm-up {warmup_s:.1f} s")
    if args.json:
        record = {"framework": "pytorch", "version": torch.__version__, "device": dev.type,
                  "device_name": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                  "model": args.model, "batch": batch, "precision": args.precision,
                  "mode": "compile" if args.compile else "eager", "channels_last": args.channels_last,
                  "threads": args.threads if dev.type == "cpu" else None,
                  "img_s_best": max(rates), "img_s_median": statistics.median(rates), "peak_mib": peak,
                  "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None}
        with open(args.json, "a") as f:
            f.write(json.dumps(record) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--model", default="baseline", choices=["baseline", "resnet18"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[64])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument("--steps", type=int, default=10, help="steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="append one JSON record per batch to this file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
        tf32 = args.precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    for batch in args.batch:
        run(args, batch)


if __name__ == "__main__":
    main()
