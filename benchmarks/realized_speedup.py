"""Realized-speedup efficiency of random token drop: does cutting FLOPs cut time?

    efficiency(P) = (t_full / t_P) / (GFLOPs_full / GFLOPs_P)

1.0 means time falls exactly as FLOPs do; below 1, overhead (selection, gathers, small
kernels) eats part of the saving. Full and reduced passes are interleaved round by round
and medians are taken, so machine noise affects both alike; the ratios come from one run.

    python benchmarks/realized_speedup.py                       # videomae_s, CPU, batch 2
    python benchmarks/realized_speedup.py --device cuda --batch-size 32 --backbone videomae_b

Target (issue 2): >= 0.85 at P = 0.9, 0.5 and 0.25 on videomae_s on the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from tokbench.backbones import create_backbone
from tokbench.benchmark.environment import collect_environment, resolve_device
from tokbench.benchmark.flops import count_flops
from tokbench.benchmark.timing import measure_throughput
from tokbench.methods import build_method

TARGET = 0.85


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="videomae_s")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--p-ratios", default="0.9,0.5,0.25")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if any efficiency < {TARGET}")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    model = create_backbone(args.backbone).to(device)
    ratios = [float(p) for p in args.p_ratios.split(",")]
    methods = {1.0: build_method("none")} | {p: build_method("random", p_ratio=p) for p in ratios}
    gflops = {p: count_flops(model.config, m).gflops for p, m in methods.items()}
    env = collect_environment(device)
    print(f"# {args.backbone} on {env['device_name']} ({env['torch_threads']} threads), batch {args.batch_size}, "
          f"torch {env['torch_version']}, {args.rounds} interleaved rounds")

    def once(method) -> float:
        t = measure_throughput(model, method, batch_size=args.batch_size, device=device, warmup=0, repeats=1)
        return t.median_ms

    for method in methods.values():  # warm-up round, untimed
        once(method)
    samples: dict[float, list[float]] = {p: [] for p in methods}
    for _ in range(args.rounds):
        for p, method in methods.items():
            samples[p].append(once(method))
    t = {p: statistics.median(s) for p, s in samples.items()}

    print(f"{'P':>5} {'tokens':>6} {'GFLOPs':>8} {'ms/batch':>9} {'FLOP ratio':>10} {'speedup':>8} {'efficiency':>10}")
    print(f"{1.0:>5} {model.num_patches:>6} {gflops[1.0]:>8.2f} {t[1.0]:>9.1f} {'':>10} {'':>8} {'':>10}")
    worst = float("inf")
    for p in ratios:
        flop_ratio = gflops[1.0] / gflops[p]
        speedup = t[1.0] / t[p]
        efficiency = speedup / flop_ratio
        worst = min(worst, efficiency)
        tokens = round(p * model.num_patches)
        mark = "ok" if efficiency >= TARGET else f"BELOW {TARGET}"
        print(f"{p:>5} {tokens:>6} {gflops[p]:>8.2f} {t[p]:>9.1f} {flop_ratio:>10.2f} "
              f"{speedup:>8.2f} {efficiency:>10.2f}  {mark}")
    print(f"# worst efficiency {worst:.2f} (target >= {TARGET})")
    return 1 if args.check and worst < TARGET else 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
