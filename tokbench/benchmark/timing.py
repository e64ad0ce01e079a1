"""Throughput in the style of timm's ``benchmark.py``: warm-up, ``inference_mode``,
synchronised timing, the median and spread of raw repeats, peak memory.

Every sample is kept (``samples_ms``) so a reader can recompute any statistic. On CUDA,
each repeat is timed with CUDA events and the run uses bf16 autocast by default; on the
CPU, ``perf_counter`` around a blocking call, fp32 by default (bf16 autocast on request).

Honest numbers on a shared machine, the way pyperf and timm's benchmark treat them:

- **Enough repeats to bound the spread.** After the requested ``repeats``, timing goes on
  while the relative interquartile range exceeds ``target_spread`` (10 %), up to
  ``4 x repeats`` samples or ``budget_s`` seconds of timed passes.
- **An interval.** The 95 % distribution-free interval of the median (order statistics of
  the samples: ranks from the binomial(n, 1/2) distribution), as clips/s.
- **Is the machine busy?** :func:`calibrate` times a fixed matrix product (GFLOP/s) before
  and after the timed passes, and the 1-minute load average is read. A cell is flagged
  ``busy`` when the load exceeds 1.5 x the CPUs this process may use, or the calibration
  fell below 0.7 x the best calibration seen (by the caller: the sweep), and ``noisy`` when
  the spread stayed above ``NOISY_SPREAD`` (25 %). Flags go into the record (``speed_flags``);
  ``tokbench run`` lists the flagged cells after its summary.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from tokbench.backbones.vit import VideoViT
from tokbench.errors import TokbenchError
from tokbench.methods.base import Method

__all__ = ["Timing", "measure_throughput", "resolve_dtype", "DTYPES", "calibrate", "median_interval", "load_per_cpu",
           "TARGET_SPREAD", "NOISY_SPREAD", "BUSY_LOAD", "BUSY_CALIBRATION"]

TARGET_SPREAD = 0.10  # relative IQR that stops extra repeats
NOISY_SPREAD = 0.25  # relative IQR above which a timing is flagged noisy
BUSY_LOAD = 1.5  # 1-minute load average per usable CPU above which the machine is busy
BUSY_CALIBRATION = 0.7  # calibration below this fraction of the best seen: busy

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """``auto`` -> bf16 (autocast) on CUDA, fp32 on the CPU."""
    if dtype == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if dtype not in DTYPES:
        raise TokbenchError(f"unknown dtype {dtype!r}: use auto, {', '.join(DTYPES)}")
    return dtype


@dataclass
class Timing:
    """Raw and derived timing of one batched forward pass."""

    batch_size: int
    warmup: int
    repeats: int
    samples_ms: list[float]  # one per repeat, whole batch
    median_ms: float  # whole batch
    iqr_ms: float  # interquartile range of the samples
    ms_per_clip: float
    clips_per_s: float
    peak_mem_mb: float | None  # CUDA peak allocated; None on the CPU
    dtype: str
    spread: float | None = None  # IQR / median (None from one sample)
    clips_per_s_lo: float | None = None  # 95 % interval of the median, as clips/s
    clips_per_s_hi: float | None = None
    calibration_gflops: tuple[float, float] | None = None  # before, after the timed passes
    load_per_cpu: float | None = None
    flags: list[str] = field(default_factory=list)  # "busy", "noisy"


def _quantiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[0], q[2]


def median_interval(samples: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval of the median of ``samples``: the order statistics
    x_(j), x_(n+1-j) with j the largest rank such that P(Binomial(n, 1/2) < j) <= (1 - level)/2.
    Fewer than 6 samples cannot reach 95 %: (min, max)."""
    xs = sorted(samples)
    n = len(xs)
    alpha = (1 - level) / 2
    cdf, j = 0.0, 0
    for k in range(n + 1):  # P(X <= k - 1) <= alpha  <=>  rank k may bound the interval
        if cdf > alpha:
            break
        j = k
        cdf += math.comb(n, k) / 2**n
    if j < 1:
        return xs[0], xs[-1]
    return xs[j - 1], xs[n - j]


def load_per_cpu() -> float | None:
    """The 1-minute load average divided by the CPUs this process may run on."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        return os.getloadavg()[0] / cpus
    except (AttributeError, OSError):
        return None


def calibrate(device: torch.device, *, size: int = 256, reps: int = 8) -> float:
    """GFLOP/s of a fixed ``size`` x ``size`` matrix product on ``device`` (best of ``reps``;
    fvcore's convention, one multiply-add = one FLOP): a yardstick of how fast the machine is
    right now (~10 ms on a CPU core)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    best = float("inf")
    with torch.inference_mode():
        a @ b  # untimed: thread pool and caches
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            a @ b
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            best = min(best, time.perf_counter() - t0)
    return size**3 / max(best, 1e-9) / 1e9


def measure_throughput(
    model: VideoViT, method: Method, *, batch_size: int, device: torch.device,
    dtype: str = "auto", warmup: int = 3, repeats: int = 10, seed: int = 0, video: Tensor | None = None,
    target_spread: float = TARGET_SPREAD, budget_s: float = 5.0, best_calibration: float | None = None,
) -> Timing:
    """Time ``model(video, method)`` on random clips of the model's geometry.

    Args:
        model: the backbone, already on ``device`` and in eval mode.
        method: the configured method (``setup`` already called).
        batch_size: clips per forward pass.
        dtype: ``fp32``, ``bf16`` or ``fp16`` (autocast on CUDA), or ``auto``.
        warmup: untimed passes first (allocator, kernels, caches).
        repeats: timed passes at least; more (up to 4x) while the spread exceeds
            ``target_spread``, within ``budget_s`` seconds of timed passes.
        best_calibration: the fastest :func:`calibrate` result seen before (e.g. earlier in
            the sweep); a calibration now below 0.7x of it flags the timing ``busy``.
        video: (batch_size, C, T, H, W) clips to time instead of random ones (methods whose
            cost depends on content, e.g. RLT, keep every token of random noise).
    """
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise TokbenchError(
            f"batch_size and repeats must be >= 1 and warmup >= 0 (got {batch_size}, {repeats}, {warmup})"
        )
    dtype = resolve_dtype(dtype, device)
    cuda = device.type == "cuda"
    gen = torch.Generator(device="cpu").manual_seed(seed)
    if video is None:
        video = torch.randn(batch_size, *model.config.input_shape, generator=gen)
    elif video.shape[0] != batch_size:
        raise TokbenchError(f"video holds {video.shape[0]} clips for batch size {batch_size}")
    video = video.to(device)
    # Autocast, never model.to(dtype): the model is shared by every cell of a sweep.
    autocast = (
        torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "fp32" else contextlib.nullcontext()
    )
    samples: list[float] = []
    calib_before, load = calibrate(device), load_per_cpu()
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(video, method)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        while len(samples) < repeats or (
            len(samples) < 4 * repeats and sum(samples) < budget_s * 1e3 and _spread(samples) > target_spread
        ):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(video, method)
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                model(video, method)
                samples.append((time.perf_counter() - t0) * 1e3)
    calib_after = calibrate(device)
    median = statistics.median(samples)
    q1, q3 = _quantiles(samples)
    lo_ms, hi_ms = median_interval(samples)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    best = max(best_calibration or 0.0, calib_before, calib_after)
    flags = []
    if (load is not None and load > BUSY_LOAD) or min(calib_before, calib_after) < BUSY_CALIBRATION * best:
        flags.append("busy")
    spread = _spread(samples) if len(samples) > 1 else None  # one sample: no spread to judge
    if spread is not None and spread > NOISY_SPREAD:
        flags.append("noisy")
    return Timing(
        batch_size=batch_size, warmup=warmup, repeats=repeats, samples_ms=samples,
        median_ms=median, iqr_ms=q3 - q1, ms_per_clip=median / batch_size,
        clips_per_s=batch_size / (median / 1e3), peak_mem_mb=peak, dtype=dtype,
        spread=spread, clips_per_s_lo=batch_size / (hi_ms / 1e3), clips_per_s_hi=batch_size / (lo_ms / 1e3),
        calibration_gflops=(calib_before, calib_after), load_per_cpu=load, flags=flags,
    )


def _spread(samples: list[float]) -> float:
    """IQR / median; infinite below 2 samples (nothing bounds it yet)."""
    if len(samples) < 2:
        return float("inf")
    q1, q3 = _quantiles(samples)
    return (q3 - q1) / statistics.median(samples)
