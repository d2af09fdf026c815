#!/usr/bin/env python3
"""Predicts the scaling efficiency of data-parallel training from a measured bucket profile.

The profile (bench_dist with DYAD_BENCH_DIST_PROFILE) holds DataParallel's gradient buckets: their sizes, and
when each bucket's gradients were complete, measured from the start of backward, plus the step's time without
communication. The model replays one step on a link that reduces one bucket at a time, in bucket order, as
soon as the bucket is complete and the link is free (DataParallel's order; NCCL's own stream on a GPU):

    ring all-reduce of S bytes over N ranks:  t(S) = 2 (N - 1) alpha + 2 (N - 1) / N * S / beta

with alpha the per-message latency and beta the link's bus bandwidth (NCCL's "busbw"). What is still being
reduced when backward ends is exposed; the step takes compute + exposed and the efficiency is
compute / (compute + exposed). A target's compute time is the measured one scaled to --step-ms (the buckets'
ready times scale with it): a GPU's step time for the model must be given, since the profile comes from the
machine it was measured on.

    python3 scripts/dist_model.py PROFILE.json [--step-ms MS ...]
"""
import argparse
import json
import sys

# Links: name, ranks, latency alpha (s), bus bandwidth beta (bytes/s). NVLink 4 (H100 SXM, NVSwitch): NCCL
# all-reduce reaches about 360 GB/s bus bandwidth on 8 GPUs at large messages; 100 Gbit/s Ethernet or
# InfiniBand EDR: 12.5 GB/s raw, about 11 GB/s achieved; latencies are NCCL's typical small-message figures.
LINKS = [
    ("8 GPUs, NVLink (NVSwitch)", 8, 10e-6, 360e9),
    ("2 nodes, 100 Gbit/s", 2, 20e-6, 11e9),
]


def ring_seconds(nbytes, ranks, alpha, beta):
    return 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * nbytes / beta


def replay(buckets, backward_ms, ranks, alpha, beta, scale):
    """Returns (exposed ms, total communication ms) for one step with ready times scaled by `scale`."""
    link_free = 0.0
    comm = 0.0
    for b in buckets:
        ready = b["ready_ms_after_backward_start"] * scale
        t = 1e3 * ring_seconds(b["bytes"], ranks, alpha, beta)
        comm += t
        link_free = max(link_free, ready) + t
    return max(0.0, link_free - backward_ms * scale), comm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--step-ms", type=float, action="append", default=[],
                    help="a target's step time without communication (repeatable); default: the measured one")
    ap.add_argument("--measured-link", nargs=2, type=float, metavar=("ALPHA_S", "BETA_BPS"),
                    help="also replay on this link with the profile's own rank count (checks the model against "
                         "the machine the profile comes from)")
    a = ap.parse_args()
    with open(a.profile) as f:
        p = json.load(f)
    buckets = p["buckets"]
    step = p["step_ms_without_communication"]
    # Backward ends (about) when its last bucket is complete: the first layer's gradients come last.
    backward = max(b["ready_ms_after_backward_start"] for b in buckets)
    total = sum(b["bytes"] for b in buckets)
    print(f"{p['model']}: {len(buckets)} buckets, {total / 2**20:.1f} MiB of gradients; measured step "
          f"{step:.1f} ms without communication, backward about {backward:.1f} ms of it "
          f"({p['ranks']} ranks x {p['threads']} threads, batch {p['batch_per_rank']} per rank)")
    targets = a.step_ms or [step]
    links = list(LINKS)
    if a.measured_link:
        links.append(("this machine (measured link)", p["ranks"], a.measured_link[0], a.measured_link[1]))
    print(f"{'link':32} {'step ms':>8} {'comm ms':>8} {'exposed ms':>10} {'efficiency':>10}")
    for name, ranks, alpha, beta in links:
        for t in targets:
            scale = t / step
            exposed, comm = replay(buckets, backward, ranks, alpha, beta, scale)
            eff = t / (t + exposed)
            print(f"{name:32} {t:8.1f} {comm:8.2f} {exposed:10.2f} {100 * eff:9.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
