"""Realized-speedup efficiency of token reduction: does cutting FLOPs cut time?

    efficiency(method, P) = (t_full / t_method) / (GFLOPs_full / GFLOPs_method)

1.0 means time falls exactly as FLOPs do; below 1, overhead that FLOPs do not count
(selection, matching, gathers and scatters, padding, small kernels) eats part of the
saving. Full and reduced passes are interleaved round by round and medians are taken, so
machine noise affects both alike; the ratios come from one run.

    python benchmarks/realized_speedup.py                       # random, videomae_s, CPU, batch 2
    python benchmarks/realized_speedup.py --methods rlt,motion,attention,tome,vid_tldr --p-ratios 0.5
    python benchmarks/realized_speedup.py --device cuda --batch-size 32 --backbone videomae_b

Methods whose cost depends on the clips (RLT) are calibrated on, and timed on, clips of
``--content`` (a synthetic dataset rendered in the backbone's geometry); their FLOPs are
the mean over the timed clips. Compare RLT's two ways of batching clips of different
lengths with ``--methods "rlt,rlt(batching='pad')"``.

Targets: >= 0.85 for random (issue 2), rlt, motion and attention; >= 0.7 for tome and
vid_tldr (issue 5), at P = 0.5 on videomae_s on the CPU.
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
from tokbench.data import create_dataset
from tokbench.methods import build_method, split_specs

TARGETS = {"random": 0.85, "rlt": 0.85, "motion": 0.85, "attention": 0.85, "tome": 0.7, "vid_tldr": 0.7}


def _clips(name: str, split: str, n: int, config) -> torch.Tensor:
    ds = create_dataset(name, split=split, num_clips=n, frames=config.num_frames, size=config.img_size)
    return torch.stack([ds[i]["video"] for i in range(n)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="videomae_s")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds")
    parser.add_argument("--methods", default="random", help="comma-separated method specs")
    parser.add_argument("--p-ratios", default="0.9,0.5,0.25")
    parser.add_argument("--content", default="synth-motion", help="clips for content-dependent methods (RLT)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any efficiency is below its target")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    model = create_backbone(args.backbone).to(device)
    ratios = [float(p) for p in args.p_ratios.split(",")]
    video = _clips(args.content, "val", args.batch_size, model.config)
    calibration = None

    # (label, target, method, GFLOPs) for every point; the full model first.
    points: list[tuple[str, float | None, object, float]] = []
    full = build_method("none")
    points.append(("none", None, full, count_flops(model.config, full).gflops))
    for spec in split_specs(args.methods):
        for p in ratios:
            method = build_method(spec, p_ratio=p)
            method.setup(model)
            if method.needs_calibration:
                if calibration is None:
                    calibration = _clips(args.content, "train", 16, model.config)
                method.calibrate(calibration)
            videos = video.cpu() if method.cost_depends_on_content else None
            gflops = count_flops(model.config, method, videos=videos).gflops
            method.setup(model)
            points.append((f"{spec} P={p:g}", TARGETS.get(method.name), method, gflops))
    env = collect_environment(device)
    print(f"# {args.backbone} on {env['device_name']} ({env['torch_threads']} threads), batch {args.batch_size}, "
          f"torch {env['torch_version']}, {args.rounds} interleaved rounds; clips from {args.content}")

    def once(method) -> float:
        t = measure_throughput(model, method, batch_size=video.shape[0], device=device, warmup=0, repeats=1,
                               video=video)
        return t.median_ms

    for _, _, method, _ in points:  # warm-up round, untimed
        once(method)
    samples: list[list[float]] = [[] for _ in points]
    for _ in range(args.rounds):
        for i, (_, _, method, _) in enumerate(points):
            samples[i].append(once(method))
    t = [statistics.median(s) for s in samples]

    print(f"{'point':<34} {'GFLOPs':>8} {'ms/batch':>9} {'FLOP ratio':>10} {'speedup':>8} {'efficiency':>10}")
    print(f"{'none':<34} {points[0][3]:>8.2f} {t[0]:>9.1f}")
    failed = False
    for (label, target, _, gflops), ms in zip(points[1:], t[1:]):
        flop_ratio = points[0][3] / gflops
        speedup = t[0] / ms
        efficiency = speedup / flop_ratio
        ok = target is None or efficiency >= target
        failed |= not ok
        mark = "ok" if ok else f"BELOW {target}"
        print(f"{label:<34} {gflops:>8.2f} {ms:>9.1f} {flop_ratio:>10.2f} {speedup:>8.2f} {efficiency:>10.2f}  {mark}")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
