#!/usr/bin/env python3
"""PyTorch CPU reference for bench_train_step: the same baseline CNN training step (64x64x3 input,
200 classes, SGD momentum 0.9, weight decay 5e-4, cross-entropy, random data already in memory).

  python3 bench/pytorch_train_step.py --threads 2 --batch 64

Prints one line per repeat and the best and median img/s. Development-time only (PyTorch from PyPI)."""
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10, help="steps per repeat")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = baseline_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch, 3, 64, 64)
    y = torch.randint(0, 200, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = (time.perf_counter() - t0) / args.steps
        rates.append(args.batch / dt)
        print(f"repeat {r}: {dt * 1e3:.1f} ms/step, {args.batch / dt:.1f} img/s")
    print(f"pytorch {torch.__version__} cpu threads={args.threads} batch={args.batch}: "
          f"best {max(rates):.1f} img/s, median {statistics.median(rates):.1f} img/s")


if __name__ == "__main__":
    main()
