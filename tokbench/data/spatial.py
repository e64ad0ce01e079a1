"""Test-time resize and crop rules of published evaluation code.

At test time every protocol resizes each frame so that its short side is ``size`` (the
crop size) and takes ``crops`` square ``size x size`` crops along the long side. The rules
differ in three small ways, each kept as upstream has it:

==========  ================================  ===================  ===========================
rule        long side after resize            interpolation        crop offsets on the long side
==========  ================================  ===================  ===========================
videomae    ``int(size * long / short)``      cv2 INTER_LINEAR on  3: ``int(k * (L - S) / 2)``;
                                              uint8 (no            1: ``int(round((L - S) / 2))``
                                              antialiasing)
slowfast    ``floor(long / short * size)``    bilinear on floats,  3: ``0, ceil((L - S) / 2), L - S``;
                                              no antialiasing      1: the centre
mmaction    ``int(long * size / short + .5)``  cv2 INTER_LINEAR     3: ``0, 2 s, s`` with ``s = (L - S) // 2``;
                                              on uint8             1: ``(L - S) // 2``
tokbench    ``round(long * size / short)``    bilinear,            3: ``0, (L - S) // 2, L - S``;
                                              antialiased          1: ``(L - S) // 2``
==========  ================================  ===================  ===========================

Sources: MCG-NJU/VideoMAE@14ef8d8 ``functional.py:resize_clip``/``get_resize_sizes``,
``kinetics.py``/``ssv2.py`` ``__getitem__`` (``spatial_step = 1.0 * (max(H, W) -
short_side_size) / (test_num_crop - 1)``, ``spatial_start = int(split_nb * spatial_step)``)
and ``video_transforms.py:CenterCrop`` (one crop, the validation mode);
facebookresearch/SlowFast ``slowfast/datasets/transform.py``
(``random_short_side_scale_jitter`` with min = max = size, ``uniform_crop``);
taoyang1122/adapt-image-models@b3580d2 ``mmaction/datasets/pipelines/augmentations.py``
(``Resize(scale=(-1, size))`` with mmcv ``rescale_size``, ``ThreeCrop``, ``CenterCrop``).

cv2 is not a dependency: its INTER_LINEAR is bilinear interpolation with half-pixel
centres and no antialiasing, i.e. ``F.interpolate(mode="bilinear", align_corners=False,
antialias=False)``; the result is rounded to integers as cv2 returns uint8 (cv2's
fixed-point weights can still differ from this by one grey level on some pixels).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from tokbench.errors import TokbenchError

__all__ = ["resized_size", "crop_offsets", "resize_clip", "crop_views", "RULES"]

RULES = ("videomae", "slowfast", "mmaction", "tokbench")


def _check_rule(rule: str) -> None:
    if rule not in RULES:
        raise TokbenchError(f"unknown resize/crop rule {rule!r}; rules: {', '.join(RULES)}")


def resized_size(h: int, w: int, size: int, rule: str) -> tuple[int, int]:
    """(new_h, new_w) of an (h, w) frame whose short side becomes ``size`` under ``rule``.

    >>> resized_size(240, 320, 224, "videomae"), resized_size(240, 320, 224, "mmaction")
    ((224, 298), (224, 299))
    """
    _check_rule(rule)
    if h < 1 or w < 1 or size < 1:
        raise TokbenchError(f"cannot resize a {h}x{w} frame to short side {size}")
    if rule == "videomae":  # functional.get_resize_sizes; unchanged if the short side fits
        if (w <= h and w == size) or (h <= w and h == size):
            return h, w
        return (int(size * h / w), size) if w < h else (size, int(size * w / h))
    if rule == "slowfast":  # transform.random_short_side_scale_jitter
        if (w <= h and w == size) or (h <= w and h == size):
            return h, w
        return (int(math.floor(float(h) / w * size)), size) if w < h else (size, int(math.floor(float(w) / h * size)))
    if rule == "mmaction":  # mmcv.rescale_size((w, h), (inf, size)) -> int(x * scale + 0.5)
        scale = min(math.inf / max(h, w), size / min(h, w))
        return int(h * float(scale) + 0.5), int(w * float(scale) + 0.5)
    scale = size / min(h, w)  # tokbench: round, never below size
    return max(size, round(h * scale)), max(size, round(w * scale))


def crop_offsets(h: int, w: int, size: int, crops: int, rule: str) -> list[tuple[int, int]]:
    """(top, left) of each ``size x size`` crop of a resized (h, w) frame, in upstream's
    view order.

    >>> crop_offsets(224, 299, 224, 3, "videomae"), crop_offsets(224, 299, 224, 3, "slowfast")
    ([(0, 0), (0, 37), (0, 75)], [(0, 0), (0, 38), (0, 75)])
    >>> crop_offsets(224, 299, 224, 3, "mmaction")
    [(0, 0), (0, 74), (0, 37)]

    Raises:
        TokbenchError: a crop larger than the frame, or a number of crops the rule has no
            arithmetic for (slowfast and mmaction: 1 or 3; videomae: 1 or more; tokbench: 1 or 3).
    """
    _check_rule(rule)
    if size > min(h, w):
        raise TokbenchError(f"a {size}x{size} crop does not fit a {h}x{w} frame")
    allowed = {"videomae": None, "slowfast": (1, 3), "mmaction": (1, 3), "tokbench": (1, 3)}[rule]
    if crops < 1 or (allowed and crops not in allowed):
        valid = "1 or more" if allowed is None else " or ".join(map(str, allowed))
        raise TokbenchError(f"the {rule} crop rule takes {valid} spatial crops, got {crops}")
    if rule == "videomae":
        if crops == 1:  # video_transforms.CenterCrop (the validation mode; test mode divides by 0)
            return [(int(round((h - size) / 2.0)), int(round((w - size) / 2.0)))]
        tall = h >= w  # kinetics.py: `if buffer.shape[1] >= buffer.shape[2]` crops along the height
        step = 1.0 * (max(h, w) - size) / (crops - 1)
        return [(int(k * step), 0) if tall else (0, int(k * step)) for k in range(crops)]
    if rule == "slowfast":  # transform.uniform_crop(spatial_idx): 1 crop is spatial_idx 1
        y, x = int(math.ceil((h - size) / 2)), int(math.ceil((w - size) / 2))
        if crops == 1:
            return [(y, x)]
        if h > w:
            return [(0, x), (y, x), (h - size, x)]
        return [(y, 0), (y, x), (y, w - size)]
    if rule == "mmaction":
        if crops == 1:  # CenterCrop
            return [((h - size) // 2, (w - size) // 2)]
        if size == h:  # ThreeCrop: left, right, middle
            s = (w - size) // 2
            return [(0, 0), (0, 2 * s), (0, s)]
        s = (h - size) // 2
        return [(0, 0), (2 * s, 0), (s, 0)]
    y, x = (h - size) // 2, (w - size) // 2  # tokbench: start, centre, end of the long side
    if crops == 1:
        return [(y, x)]
    if h >= w:
        return [(0, 0), (y, 0), (h - size, 0)]
    return [(0, 0), (0, x), (0, w - size)]


def resize_clip(clip: Tensor, size: int, rule: str) -> Tensor:
    """uint8 (T, H, W, 3) -> float (C, T, h, w) in [0, 1], short side ``size`` under ``rule``."""
    _check_rule(rule)
    T, H, W, _ = clip.shape
    new = resized_size(H, W, size, rule)
    if rule == "tokbench":  # as tokbench.data.views.to_views always did: [0, 1] floats, antialiased
        x = clip.permute(0, 3, 1, 2).float() / 255.0
        if new != (H, W):
            x = F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=True)
        return x.permute(1, 0, 2, 3)
    x = clip.permute(0, 3, 1, 2).float()  # (T, C, H, W), 0..255
    if new != (H, W):
        x = F.interpolate(x, size=new, mode="bilinear", align_corners=False, antialias=False)
        if rule in ("videomae", "mmaction"):  # cv2.resize on uint8 returns uint8
            x = x.round().clamp_(0, 255)
    return x.permute(1, 0, 2, 3) / 255.0


def crop_views(frames: Tensor, size: int, crops: int, rule: str) -> list[Tensor]:
    """Resized (C, T, h, w) -> ``crops`` (C, T, size, size) crops (:func:`crop_offsets`)."""
    _, _, h, w = frames.shape
    return [frames[:, :, y: y + size, x: x + size] for y, x in crop_offsets(h, w, size, crops, rule)]
