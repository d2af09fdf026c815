#!/usr/bin/env python3
"""Builds the Markdown comparison table of scripts/compare.sh from its raw results: dyad_gpu.json (Google
Benchmark JSON from bench_train_step) and pytorch.jsonl (bench/pytorch_train_step.py --json) for the GPU, and
one folder per CPU round, round_R/, with dyad_cpu.json, dyad_cpu_resnet18.json, dyad_gemm.json (bench_gemm),
pytorch.jsonl and pytorch_gemm.jsonl (bench/pytorch_gemm.py). Each CPU row gives the median over the rounds
and their range, and the median and range of the per-round ratios (each round's two sides ran back to back).
Standard library only. Usage: compare_table.py OUT_DIR > compare.md"""
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
        if "precision" in a:  # GPU: (model, batch, math, graph, fuse, channels_last images)
            key = ("cuda", MODELS[a["model"]], a["batch"], PRECISIONS[a["precision"]], a.get("graph", 0),
                   a.get("fuse", 1), a.get("nhwc", 0))
        else:
            if a.get("fuse", 1) == 0:
                continue
            key = ("cpu", MODELS[a["model"]], a["batch"], a["threads"])
        rates.setdefault(key, []).append(b["img/s"])
        if "peak_MiB" in b:
            mem = max(b["peak_MiB"], b.get("steady_MiB", 0.0))
            peaks[key] = max(peaks.get(key, 0.0), mem)
    return rates, peaks, data.get("context", {})


def load_floor_shares(path):
    """{(model, batch, threads): pct_floor} of bench_train_step's CPU runs (layer fusion on): the step's rate
    over its compute floor"""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        if b.get("run_type") != "iteration" or "pct_floor" not in b or b.get("error_occurred"):
            continue
        a = args_of(b["name"])
        if "precision" not in a and a.get("fuse", 1) != 0:
            out[(MODELS[a["model"]], a["batch"], a["threads"])] = b["pct_floor"]
    return out


def load_gemm(path):
    """{(n, threads): (GFLOP/s, share of the FMA peak, kernel ISA)} from bench_gemm's JSON
    (gemm_omp/squareN/threads:T)"""
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        m = re.match(r"gemm_omp/square(\d+)/threads:(\d+)", b.get("name", ""))
        if m and b.get("run_type") == "iteration" and "FLOP/s" in b and not b.get("error_occurred"):
            out[(int(m.group(1)), int(m.group(2)))] = (b["FLOP/s"] / 1e9, b.get("pct_peak"), b.get("label", ""))
    return out


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cpu_rounds(out):
    """[{row: (dyad, pytorch)}] per round, {row: [dyad's share of the FMA peak per round]} for the SGEMM rows,
    and every PyTorch record read; row = ("baseline" | "resnet18", batch, threads) or ("sgemm", n, threads); a
    side that did not run is None."""
    rounds, peak_shares, records = [], {}, []
    for rd in sorted(glob.glob(os.path.join(out, "round_*")), key=lambda d: int(d.rsplit("_", 1)[1])):
        dyad = {}
        for name in ("dyad_cpu.json", "dyad_cpu_resnet18.json"):
            path = os.path.join(rd, name)
            if os.path.exists(path):
                rates, _, _ = load_dyad(path)
                for k, v in rates.items():
                    if k[0] == "cpu":
                        dyad[(k[1], k[2], k[3])] = statistics.median(v)
                for k, share in load_floor_shares(path).items():
                    peak_shares.setdefault(("step",) + k, []).append(share)
        if os.path.exists(os.path.join(rd, "dyad_gemm.json")):
            for (n, t), (v, share, isa) in load_gemm(os.path.join(rd, "dyad_gemm.json")).items():
                dyad[("sgemm", n, t)] = v
                if share is not None:
                    peak_shares.setdefault(("sgemm", n, t, isa), []).append(share)
        torch = {}
        steps = read_jsonl(os.path.join(rd, "pytorch.jsonl"))
        gemms = read_jsonl(os.path.join(rd, "pytorch_gemm.jsonl"))
        records += steps + gemms
        for r in steps:
            if r.get("device") == "cpu":
                torch[(r["model"], r["batch"], r["threads"])] = r["img_s_median"]
        for r in gemms:
            torch[("sgemm", r["n"], r["threads"])] = r["gflops_median"]
        rounds.append({k: (dyad.get(k), torch.get(k)) for k in set(dyad) | set(torch)})
    return rounds, peak_shares, records


def spread(values, digits):
    """'median (min-max)' of the values present, '-' when there are none"""
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    med = fmt(statistics.median(v), digits)
    return med if len(v) == 1 else f"{med} ({fmt(min(v), digits)}-{fmt(max(v), digits)})"


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
    isa = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(re.search(r"flags\s*:\s*(.*)", f.read()).group(1).split())
        isa = ", ".join(x for x in ("avx2", "fma", "avx512f", "amx_tile") if x in flags)
    except (OSError, AttributeError):
        pass
    rounds, peak_shares, round_runs = cpu_rounds(out)
    versions = [r["version"] for r in torch_runs + round_runs if r.get("version")]
    torch_version = versions[0] if versions else "not available"
    blas = next((r["blas"] for r in round_runs if r.get("blas")), None)
    print(f"## dyad vs PyTorch, {now}\n")
    print(f"- GPU: {gpu_line or 'none'}")
    print(f"- dyad CUDA libraries: {ctx.get('dyad_cuda_versions', '-')}")
    cudnn = next((r["cudnn"] for r in torch_runs if r.get("cudnn")), None)
    print(f"- PyTorch: {torch_version}" + (f" (cuDNN {cudnn})" if cudnn else "") + (f", CPU BLAS {blas}" if blas else ""))
    print(f"- CPU: {cpu_model}, {os.cpu_count()} cores visible" + (f"; ISA: {isa}" if isa else ""))
    print("- Both sides: SGD momentum 0.9, weight decay 5e-4, cross-entropy, random 64x64x3 data already on the "
          "device; GPU rows: best img/s of the repeats; GPU times from CUDA events, peak memory from each allocator.\n")

    all_gpu = [k for k in rates if k[0] == "cuda"]
    # The main table: the defaults (CUDA graph and fusion on); the levers table below shows the others.
    gpu_keys = sorted((k for k in all_gpu if k[4] == 1 and k[5] == 1 and k[6] == 0), key=lambda k: (k[1], k[3], k[2]))
    if gpu_keys:
        print("### GPU\n")
        print("| model | batch | math | dyad img/s | dyad peak MiB | PyTorch eager img/s | PyTorch peak MiB "
              "| dyad / eager | torch.compile img/s | dyad / compile |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for k in gpu_keys:
            _, model, batch, prec, _, _, _ = k
            d = best(rates[k])
            e, epk = torch_best("cuda", model, batch, prec)
            c, _ = torch_best("cuda", model, batch, prec, mode="compile")
            note = " (PyTorch: autocast, channels_last)" if prec == "bf16" else ""
            print(f"| {model} | {batch} | {prec}{note} | {fmt(d)} | {fmt(peaks.get(k))} | {fmt(e)} | {fmt(epk)} "
                  f"| {ratio(d, e)} | {fmt(c)} | {ratio(d, c)} |")
        print()

        levers = [k for k in all_gpu if not (k[4] == 1 and k[5] == 1) and k[6] == 0]
        if levers:
            print("### Levers (dyad, GPU): the default step against the same step without one lever\n")
            print("| model | batch | math | without | img/s without | img/s with (default) | gain |")
            print("|---|---|---|---|---|---|---|")
            for k in sorted(levers, key=lambda k: (k[1], k[2], k[4], k[5])):
                _, model, batch, prec, graph, fuse, _ = k
                base = ("cuda", model, batch, prec, 1, 1, 0)
                without = best(rates[k])
                with_ = best(rates.get(base, []))
                name = "CUDA graph" if graph == 0 else "layer fusion"
                print(f"| {model} | {batch} | {prec} | {name} | {fmt(without)} | {fmt(with_)} | {ratio(with_, without)} |")
            print()

        nhwc = [k for k in all_gpu if k[6] == 1]
        if nhwc:
            print("### channels_last (dyad, GPU): the default step fed channels_last images (NHWC kernels)\n")
            print("| model | batch | math | NCHW img/s | channels_last img/s | channels_last peak MiB "
                  "| channels_last / NCHW | PyTorch eager img/s | channels_last / eager |")
            print("|---|---|---|---|---|---|---|---|---|")
            for k in sorted(nhwc, key=lambda k: (k[1], k[3], k[2])):
                _, model, batch, prec, graph, fuse, _ = k
                cl = best(rates[k])
                base = best(rates.get(("cuda", model, batch, prec, graph, fuse, 0), []))
                e, _ = torch_best("cuda", model, batch, prec)
                print(f"| {model} | {batch} | {prec} | {fmt(base)} | {fmt(cl)} | {fmt(peaks.get(k))} "
                      f"| {ratio(cl, base)} | {fmt(e)} | {ratio(cl, e)} |")
            print()

    rows = sorted({k for r in rounds for k in r}, key=lambda k: (k[0] == "sgemm", k[0], k[1], k[2]))
    if rows:
        print(f"### CPU ({len(rounds)} rounds; each round ran dyad, then PyTorch, on every row)\n")
        print("| what | threads | dyad: median of rounds (range) | PyTorch: median (range) "
              "| dyad / PyTorch: median of the rounds' ratios (range) |")
        print("|---|---|---|---|---|")
        for k in rows:
            kind, size, threads = k
            pairs = [r.get(k, (None, None)) for r in rounds]
            ratios = [d / t for d, t in pairs if d and t]
            what = f"SGEMM {size}^3, GFLOP/s (PyTorch: torch.matmul)" if kind == "sgemm" else \
                f"{kind} step, batch {size}, img/s"
            digits = 0 if kind == "sgemm" else 1
            ratio_text = "-" if not ratios else (
                f"**{statistics.median(ratios):.2f}x**" if len(ratios) == 1 else
                f"**{statistics.median(ratios):.2f}x** ({min(ratios):.2f}-{max(ratios):.2f})")
            print(f"| {what} | {threads} | {spread([d for d, _ in pairs], digits)} "
                  f"| {spread([t for _, t in pairs], digits)} | {ratio_text} |")
        print()
        gemm_shares = {k: v for k, v in peak_shares.items() if k[0] == "sgemm"}
        if gemm_shares:
            parts = [f"{n}^3 on {t} thread{'s' if t > 1 else ''} ({isa or '?'}): "
                     f"{100 * statistics.median(v):.0f}%" for (_, n, t, isa), v in sorted(gemm_shares.items())]
            print("dyad's SGEMM against the FP32 FMA peak of its threads (`bench_gemm`'s pct_peak, median of the "
                  "rounds): " + "; ".join(parts) + "\n")
        step_shares = {k: v for k, v in peak_shares.items() if k[0] == "step"}
        if step_shares:
            parts = [f"{model} batch {batch} on {t} thread{'s' if t > 1 else ''}: {100 * statistics.median(v):.0f}%"
                     for (_, model, batch, t), v in sorted(step_shares.items())]
            print("dyad's training step against its compute floor (three times the forward's direct-convolution "
                  "and linear FLOP at the FMA peak of its threads; `bench_train_step`'s pct_floor, median of the "
                  "rounds): " + "; ".join(parts) + "\n")
        gpu_base = [best(rates[k]) for k in gpu_keys if k[1] == "baseline" and k[3] == "fp32"]
        cpu_base = [r[k][0] for r in rounds for k in r if k[0] == "baseline" and r[k][0]]
        if gpu_base and cpu_base:
            print(f"GPU over CPU, dyad, baseline CNN in FP32 (best GPU batch over the median CPU round): "
                  f"**{max(gpu_base) / statistics.median(cpu_base):.0f}x**\n")

if __name__ == "__main__":
    main()
