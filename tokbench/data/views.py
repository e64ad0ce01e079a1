"""tokbench's own view rule (the ``tokbench-segments`` protocol): frames and crops.

A video is cut into ``temporal_clips`` equal segments; each gives ``num_frames`` frames
sampled uniformly over the segment. Each clip's frames are resized (short side to
``size``, antialiased) and cut into ``spatial_crops`` square crops (1: centre; 3: start,
centre, end of the long side). Logits are averaged over the V = temporal_clips x
spatial_crops views. The real datasets' defaults follow published evaluation code
instead (:mod:`tokbench.data.protocols`); lp/ft training clips use this rule, 1 x 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from tokbench.data.base import IMAGENET_MEAN, IMAGENET_STD
from tokbench.errors import TokbenchError

__all__ = ["ViewSpec", "temporal_indices", "spatial_crops", "to_views", "normalize"]


@dataclass(frozen=True)
class ViewSpec:
    """Frames, size and views of the clips a model sees."""

    num_frames: int = 16
    size: int = 224
    temporal_clips: int = 1
    spatial_crops: int = 1

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.size < 1 or self.temporal_clips < 1:
            raise TokbenchError(f"invalid views {self}: frames, size and temporal clips must be >= 1")
        if self.spatial_crops not in (1, 3):
            raise TokbenchError(f"spatial_crops must be 1 or 3, got {self.spatial_crops}")

    @property
    def views(self) -> int:
        return self.temporal_clips * self.spatial_crops


def temporal_indices(total: int, num_frames: int, clips: int = 1) -> list[list[int]]:
    """Frame indices for each temporal clip: ``clips`` equal segments of ``total`` frames,
    ``num_frames`` indices uniformly spaced (segment centres) within each.

    >>> temporal_indices(8, 4)
    [[1, 3, 5, 7]]
    >>> temporal_indices(8, 2, clips=2)
    [[1, 3], [5, 7]]
    """
    if total < 1:
        raise TokbenchError("cannot sample frames from a video with no frames")
    if num_frames < 1 or clips < 1:
        raise TokbenchError(f"num_frames and clips must be >= 1, got {num_frames} and {clips}")
    # Centre of frame slot i of clip c is total * (c * T + i + 0.5) / (clips * T); integer
    # arithmetic, so an exact centre k is k (floats gave k - 1 for some totals).
    return [
        [min(total - 1, total * (2 * c * num_frames + 2 * i + 1) // (2 * clips * num_frames)) for i in range(num_frames)]
        for c in range(clips)
    ]


def _resize_short_side(frames: Tensor, size: int) -> Tensor:
    """(C, T, H, W) float -> short side ``size``, aspect kept (bilinear, antialiased)."""
    C, T, H, W = frames.shape
    scale = size / min(H, W)
    new = (max(size, round(H * scale)), max(size, round(W * scale)))
    if new == (H, W):
        return frames
    x = frames.permute(1, 0, 2, 3)  # (T, C, H, W)
    x = F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=True)
    return x.permute(1, 0, 2, 3)


def spatial_crops(frames: Tensor, size: int, crops: int) -> list[Tensor]:
    """(C, T, H, W) with short side ``size`` -> ``crops`` (C, T, size, size) crops."""
    _, _, H, W = frames.shape
    if crops == 1:
        offsets = [((H - size) // 2, (W - size) // 2)]
    elif H >= W:  # portrait: crops along the height
        offsets = [(0, 0), ((H - size) // 2, 0), (H - size, 0)]
    else:
        offsets = [(0, 0), (0, (W - size) // 2), (0, W - size)]
    return [frames[:, :, y : y + size, x : x + size] for y, x in offsets]


def normalize(frames: Tensor) -> Tensor:
    """(C, T, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=frames.dtype).view(3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=frames.dtype).view(3, 1, 1, 1)
    return (frames - mean) / std


def to_views(clips: list[Tensor], spec: ViewSpec) -> Tensor:
    """Decoded clips (each uint8 (T, H, W, C), one per temporal clip) -> normalised views,
    (C, T, S, S) for one view or (V, C, T, S, S), ordered clip-major then crop."""
    if len(clips) != spec.temporal_clips:
        raise TokbenchError(f"expected {spec.temporal_clips} decoded clip(s) for {spec}, got {len(clips)}")
    views = []
    for clip in clips:
        frames = clip.permute(3, 0, 1, 2).float() / 255.0  # (C, T, H, W)
        frames = _resize_short_side(frames, spec.size)
        views += [normalize(c.contiguous()) for c in spatial_crops(frames, spec.size, spec.spatial_crops)]
    return views[0] if len(views) == 1 else torch.stack(views)
