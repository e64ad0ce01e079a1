"""Throughput in the style of timm's ``benchmark.py``: warm-up, ``inference_mode``,
synchronised timing, the median and spread of raw repeats, peak memory.

Every sample is kept (``samples_ms``) so a reader can recompute any statistic. On CUDA,
each repeat is timed with CUDA events and the run uses bf16 autocast by default; on the
CPU, ``perf_counter`` around a blocking call, fp32 by default (bf16 autocast on request).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from tokbench.backbones.vit import VideoViT
from tokbench.errors import TokbenchError
from tokbench.methods.base import Method

__all__ = ["Timing", "measure_throughput", "resolve_dtype", "DTYPES"]

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


def _quantiles(samples: list[float]) -> tuple[float, float]:
    if len(samples) < 2:
        return samples[0], samples[0]
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[0], q[2]


def measure_throughput(
    model: VideoViT, method: Method, *, batch_size: int, device: torch.device,
    dtype: str = "auto", warmup: int = 3, repeats: int = 10, seed: int = 0, video: Tensor | None = None,
) -> Timing:
    """Time ``model(video, method)`` on random clips of the model's geometry.

    Args:
        model: the backbone, already on ``device`` and in eval mode.
        method: the configured method (``setup`` already called).
        batch_size: clips per forward pass.
        dtype: ``fp32``, ``bf16`` or ``fp16`` (autocast on CUDA), or ``auto``.
        warmup: untimed passes first (allocator, kernels, caches).
        repeats: timed passes.
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
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(video, method)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(repeats):
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
    median = statistics.median(samples)
    q1, q3 = _quantiles(samples)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else None
    return Timing(
        batch_size=batch_size, warmup=warmup, repeats=repeats, samples_ms=samples,
        median_ms=median, iqr_ms=q3 - q1, ms_per_clip=median / batch_size,
        clips_per_s=batch_size / (median / 1e3), peak_mem_mb=peak, dtype=dtype,
    )
