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

**The machine's own ceiling.** How well does this machine turn fewer tokens into less time
at all? In the same interleaved rounds the script times the backbone's bare blocks (timm
``Block``s, nothing else) on round(P * N) random tokens, and prints their efficiency against
the blocks' FLOP ratio (analytic, fvcore's convention: 12 n D^2 + 2 n^2 D per block). Each
method's ``vs ceiling`` column is its efficiency divided by the ceiling's at the same P: 1.0
means the method loses nothing beyond what the hardware loses on smaller matrices.

**A busy machine.** A fixed matrix product is timed before and after (GFLOP/s), and the load
average read; when the two calibrations differ by more than 30 % or the load exceeds 1.5 per
CPU the script says the numbers mean little (shared cores give ratios off by 2-5x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from tokbench.backbones import create_backbone
from tokbench.benchmark.environment import collect_environment, resolve_device
from tokbench.benchmark.flops import count_flops
from tokbench.benchmark.timing import calibrate, load_per_cpu, measure_throughput
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
                               video=video, target_spread=float("inf"))
        return t.median_ms

    # The ceiling: the bare blocks on the full token count and on round(P * N) tokens.
    cfg = model.config
    blocks = torch.nn.Sequential(*model.blocks)
    counts = {1.0: cfg.num_patches, **{p: round(p * cfg.num_patches) for p in ratios}}
    gen = torch.Generator().manual_seed(0)
    tokens = {p: torch.randn(args.batch_size, cfg.n_prefix + n, cfg.embed_dim, generator=gen).to(device)
              for p, n in counts.items()}

    def bare(p: float) -> float:
        with torch.inference_mode():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            blocks(tokens[p])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        return (time.perf_counter() - t0) * 1e3

    calib_before, load_before = calibrate(device), load_per_cpu()
    runs = [lambda m=method: once(m) for _, _, method, _ in points] + [lambda p=p: bare(p) for p in counts]
    for run in runs:  # warm-up round, untimed
        run()
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(args.rounds):
        for i, run in enumerate(runs):
            samples[i].append(run())
    calib_after, load_after = calibrate(device), load_per_cpu()
    medians = [statistics.median(s) for s in samples]
    t, bare_ms = medians[: len(points)], dict(zip(counts, medians[len(points):]))

    def block_flops(n: int) -> float:  # fvcore's convention, per block
        d = cfg.embed_dim
        n += cfg.n_prefix
        return 12 * n * d * d + 2 * n * n * d

    ceiling = {p: (bare_ms[1.0] / bare_ms[p]) / (block_flops(counts[1.0]) / block_flops(counts[p])) for p in ratios}
    print(f"{'ceiling (bare blocks)':<34} {'tokens':>8} {'ms/batch':>9} {'FLOP ratio':>10} {'speedup':>8} {'efficiency':>10}")
    for p in ratios:
        print(f"{'  P=' + format(p, 'g'):<34} {counts[p]:>8} {bare_ms[p]:>9.1f} "
              f"{block_flops(counts[1.0]) / block_flops(counts[p]):>10.2f} {bare_ms[1.0] / bare_ms[p]:>8.2f} "
              f"{ceiling[p]:>10.2f}")

    print(f"{'point':<34} {'GFLOPs':>8} {'ms/batch':>9} {'FLOP ratio':>10} {'speedup':>8} {'efficiency':>10} "
          f"{'vs ceiling':>10}")
    print(f"{'none':<34} {points[0][3]:>8.2f} {t[0]:>9.1f}")
    failed = False
    for (label, target, method, gflops), ms in zip(points[1:], t[1:]):
        flop_ratio = points[0][3] / gflops
        speedup = t[0] / ms
        efficiency = speedup / flop_ratio
        ok = target is None or efficiency >= target
        failed |= not ok
        mark = "ok" if ok else f"BELOW {target}"
        print(f"{label:<34} {gflops:>8.2f} {ms:>9.1f} {flop_ratio:>10.2f} {speedup:>8.2f} {efficiency:>10.2f} "
              f"{efficiency / ceiling[method.p_ratio]:>10.2f}  {mark}")
    drift = max(calib_before, calib_after) / max(min(calib_before, calib_after), 1e-9)
    loads = [x for x in (load_before, load_after) if x is not None]
    print(f"# machine: calibration {calib_before:.0f} -> {calib_after:.0f} GFLOP/s (256^3 matmul), "
          f"load {' -> '.join(f'{x:.2f}' for x in loads)} per CPU")
    if drift > 1.3 or any(x > 1.5 for x in loads):
        print("# WARNING: the machine was busy or changed speed during the run; these ratios mean little. "
              "Re-run on a quiet machine.")
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
