#!/usr/bin/env python3
"""Builds the Markdown comparison table of scripts/compare.sh from its raw results: dyad_gpu.json and
dyad_cpu_*.json (Google Benchmark JSON from bench_train_step) and pytorch.jsonl (bench/pytorch_train_step.py
--json). Standard library only. Usage: compare_table.py OUT_DIR > compare.md"""
import glob
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from datetime import datetime, timezone

PRECISIONS = {0: "fp32", 1: "tf32", 2: "bf16"}
MODELS = {0: "baseline", 1: "resnet18"}


def args_of(name):
    """'BM_train_step_cuda/batch:128/precision:0/model:0/manual_time' -> {'batch': 128, ...}"""
    return {k: int(v) for k, v in re.findall(r"(\w+):(-?\d+)", name)}


def load_dyad(path):
    """{key: [img/s of each repetition]}, {key: peak MiB}, context"""
    with open(path) as f:
        data = json.load(f)
    rates, peaks = {}, {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration" or "img/s" not in b or b.get("error_occurred"):
            continue
        a = args_of(b["name"])
        if "precision" in a:  # GPU: (model, batch, math, graph, fuse)
            key = ("cuda", MODELS[a["model"]], a["batch"], PRECISIONS[a["precision"]], a.get("graph", 0),
                   a.get("fuse", 1))
        else:
            if a.get("fuse", 1) == 0:
                continue
            key = ("cpu", MODELS[a["model"]], a["batch"], a["threads"])
        rates.setdefault(key, []).append(b["img/s"])
        if "peak_MiB" in b:
            mem = max(b["peak_MiB"], b.get("steady_MiB", 0.0))
            peaks[key] = max(peaks.get(key, 0.0), mem)
    return rates, peaks, data.get("context", {})


def fmt(v, digits=0):
    return "-" if v is None else f"{v:,.{digits}f}"


def ratio(a, b):
    return "-" if not a or not b else f"**{a / b:.2f}x**"


def best(v):
    return max(v) if v else None


def main():
    out = sys.argv[1]
    rates, peaks, ctx = {}, {}, {}
    for path in sorted(glob.glob(os.path.join(out, "dyad_*.json"))):
        r, p, c = load_dyad(path)
        for k, v in r.items():
            rates.setdefault(k, []).extend(v)
        peaks.update(p)
        ctx = ctx or c
    torch_runs = []
    jsonl = os.path.join(out, "pytorch.jsonl")
    if os.path.exists(jsonl):
        with open(jsonl) as f:
            torch_runs = [json.loads(line) for line in f if line.strip()]

    def torch_best(device, model, batch, precision=None, mode="eager", threads=None):
        hits = [r for r in torch_runs if r["device"] == device and r["model"] == model and r["batch"] == batch
                and r["mode"] == mode and (precision is None or r["precision"] == precision)
                and (threads is None or r["threads"] == threads)]
        if not hits:
            return None, None
        top = max(hits, key=lambda r: r["img_s_best"])
        return top["img_s_best"], top.get("peak_mib")

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        gpu_line = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                  capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        gpu_line = ""
    cpu_model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu_model = m.group(1) if m else cpu_model
    except OSError:
        pass
    torch_version = torch_runs[0]["version"] if torch_runs else "not available"
    print(f"## dyad vs PyTorch, {now}\n")
    print(f"- GPU: {gpu_line or 'none'}")
    print(f"- dyad CUDA libraries: {ctx.get('dyad_cuda_versions', '-')}")
    cudnn = next((r["cudnn"] for r in torch_runs if r.get("cudnn")), None)
    print(f"- PyTorch: {torch_version}" + (f" (cuDNN {cudnn})" if cudnn else ""))
    print(f"- CPU: {cpu_model}, {os.cpu_count()} cores visible")
    print("- Both sides: SGD momentum 0.9, weight decay 5e-4, cross-entropy, random 64x64x3 data already on the "
          "device; best img/s of the repeats; GPU times from CUDA events, peak memory from each allocator.\n")

    all_gpu = [k for k in rates if k[0] == "cuda"]
    # The main table: the defaults (CUDA graph and fusion on); the levers table below shows the others.
    gpu_keys = sorted((k for k in all_gpu if k[4] == 1 and k[5] == 1), key=lambda k: (k[1], k[3], k[2]))
    if gpu_keys:
        print("### GPU\n")
        print("| model | batch | math | dyad img/s | dyad peak MiB | PyTorch eager img/s | PyTorch peak MiB "
              "| dyad / eager | torch.compile img/s | dyad / compile |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for k in gpu_keys:
            _, model, batch, prec, _, _ = k
            d = best(rates[k])
            e, epk = torch_best("cuda", model, batch, prec)
            c, _ = torch_best("cuda", model, batch, prec, mode="compile")
            note = " (PyTorch: autocast, channels_last)" if prec == "bf16" else ""
            print(f"| {model} | {batch} | {prec}{note} | {fmt(d)} | {fmt(peaks.get(k))} | {fmt(e)} | {fmt(epk)} "
                  f"| {ratio(d, e)} | {fmt(c)} | {ratio(d, c)} |")
        print()

        levers = [k for k in all_gpu if not (k[4] == 1 and k[5] == 1)]
        if levers:
            print("### Levers (dyad, GPU): the default step against the same step without one lever\n")
            print("| model | batch | math | without | img/s without | img/s with (default) | gain |")
            print("|---|---|---|---|---|---|---|")
            for k in sorted(levers, key=lambda k: (k[1], k[2], k[4], k[5])):
                _, model, batch, prec, graph, fuse = k
                base = ("cuda", model, batch, prec, 1, 1)
                without = best(rates[k])
                with_ = best(rates.get(base, []))
                name = "CUDA graph" if graph == 0 else "layer fusion"
                print(f"| {model} | {batch} | {prec} | {name} | {fmt(without)} | {fmt(with_)} | {ratio(with_, without)} |")
            print()

    cpu_keys = sorted(k for k in rates if k[0] == "cpu")
    if cpu_keys:
        print("### CPU\n")
        print("| model | batch | threads | dyad omp img/s (median) | PyTorch CPU img/s (median) | dyad / PyTorch |")
        print("|---|---|---|---|---|---|")
        for k in cpu_keys:
            _, model, batch, threads = k
            d = best(rates[k])
            hits = [r for r in torch_runs if r["device"] == "cpu" and r["model"] == model and r["batch"] == batch
                    and r["threads"] == threads]
            e = max((r["img_s_best"] for r in hits), default=None)
            em = statistics.median([r["img_s_median"] for r in hits]) if hits else None
            print(f"| {model} | {batch} | {threads} | {fmt(d, 1)} ({fmt(statistics.median(rates[k]), 1)}) "
                  f"| {fmt(e, 1)} ({fmt(em, 1)}) | {ratio(d, e)} |")
        print()
        gpu_base = [best(rates[k]) for k in gpu_keys if k[1] == "baseline" and k[3] == "fp32"]
        cpu_base = [best(rates[k]) for k in cpu_keys if k[1] == "baseline"]
        if gpu_base and cpu_base:
            print(f"GPU over CPU, dyad, baseline CNN in FP32 (best GPU batch over the best CPU row): "
                  f"**{max(gpu_base) / max(cpu_base):.0f}x**\n")


if __name__ == "__main__":
    main()
