#!/usr/bin/env python3
"""PyTorch reference for bench_train_step: the same baseline CNN training step (64x64x3 input,
200 classes, SGD momentum 0.9, weight decay 5e-4, cross-entropy, random data already in memory).

  python3 bench/pytorch_train_step.py --threads 2 --batch 64                 # CPU
  python3 bench/pytorch_train_step.py --device cuda --batch 128 256          # GPU, strict FP32
  python3 bench/pytorch_train_step.py --device cuda --batch 256 --precision tf32

On the GPU: cudnn.benchmark on, TF32 off unless --precision tf32 (bf16: autocast), timed with CUDA
events over `--steps` steps per repeat, and the peak memory PyTorch's allocator reports (model, data,
activations, gradients, optimizer state). Prints one line per repeat and a summary line per batch with
the best and median img/s. Development-time only (PyTorch from PyPI)."""
import argparse
import statistics
import time

import torch
import torch.nn as nn


def baseline_cnn(num_classes=200, in_channels=3, image_size=64):
    flat = 128 * (image_size // 8) ** 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(), nn.Linear(256, num_classes))


def run(args, batch):
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = baseline_cnn().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 64, 64, device=dev)
    y = (torch.arange(batch, device=dev) * 37) % 200
    autocast = args.precision == "bf16" and dev.type == "cuda"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
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
    peak = f", peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB" if dev.type == "cuda" else ""
    print(f"pytorch {torch.__version__} {where} batch={batch}: "
          f"best {max(rates):.1f} img/s, median {statistics.median(rates):.1f} img/s{peak}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[64])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--steps", type=int, default=10, help="steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
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
