"""``frames`` and ``resolution``: the two training-free ways to spend fewer tokens that need no
token reduction method at all — fewer frames and fewer pixels.

Token-reduction papers rarely compare with them. They are the floor a clever method must
clear: ``frames`` says what the temporal redundancy a method exploits is worth
when it is simply skipped, ``resolution`` what the spatial detail it keeps is worth when the
clip is simply made smaller. Both run the backbone unchanged (no training, no scores).

How each meets a P-Ratio (each has its own granularity, so P is rounded to it and the value
reached is in :meth:`describe` as ``p_effective``; plots use measured FLOPs):

* ``frames`` keeps K = ``keep_count(T', P)`` of the T' tubelet slices (the one rounding rule,
  in whole slices), at a uniform integer stride s = ceil(T'/K), centred in the clip (offset
  (T' - 1 - s (K - 1)) // 2, the centre of each s-slice segment when s divides T'). A K that
  no stride keeps (5, 6 or 7 of 8 slices: strides 1, 2, 3, 4, 8 keep 8, 4, 3, 2, 1) is
  unreachable, so on 8 slices P = 0.6-0.9 are recorded ``unreachable``, and so is a P that
  rounds to no slice (below 1/16 on 8 slices; keep_count would raise it to one). The kept
  slices' tubelets keep their position embeddings and only they are embedded.
* ``resolution`` resizes every frame (bilinear, antialiased, as the evaluation transforms
  resize) to s patches a side, the s in 1 .. S (S the native side in patches) whose token
  fraction s^2 / S^2 is nearest to P (the larger on a tie): 224 -> 160 px (10 x 10 of 14 x 14
  patches, 0.51) at P = 0.5 on VideoMAE; 0.03, 0.11, 0.25, 0.44, 0.69 and 1 on the zoo's 6 x 6
  grid. A P nearer to 0 than to one patch a side is unreachable. Position embeddings are
  VideoMAE's sin-cos formula at each new tubelet's centre in native units
  (``VideoViT.position_embedding``). The resize is in the FLOPs (4 per output pixel value,
  fvcore's rule for bilinear resizing) and in the timing.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods.base import Method, keep_count
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips

__all__ = ["Frames", "Resolution", "stride_slices", "nearest_side", "resize_clip"]


def stride_slices(slices: int, keep: int) -> list[int] | None:
    """The ``keep`` of ``slices`` temporal slices a uniform stride keeps, centred, or ``None``
    if no integer stride keeps exactly that many (stride s keeps ceil(slices / s))."""
    if not 1 <= keep <= slices:
        return None
    stride = -(-slices // keep)
    if -(-slices // stride) != keep:
        return None
    offset = (slices - 1 - stride * (keep - 1)) // 2
    return [offset + stride * i for i in range(keep)]


def nearest_side(side: int, p_ratio: float) -> int:
    """The grid side s in 0 .. ``side`` whose token fraction s^2 / side^2 is nearest to
    ``p_ratio`` (the larger s on a tie); 0 means no grid is near enough."""
    return min(range(side, -1, -1), key=lambda s: abs(s * s / side**2 - p_ratio))


def resize_clip(video: Tensor, size: int) -> Tensor:
    """(B, C, T, H, W) -> (B, C, T, size, size): each frame resized bilinearly with
    antialiasing (as the evaluation transforms resize)."""
    B, C, T, H, W = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(B * T, C, H, W)
    frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return frames.reshape(B, T, C, size, size).permute(0, 2, 1, 3, 4)


@register_method("frames")
class Frames(Method):
    """Keep a uniform temporal stride of the tubelet slices (fewer frames), before the embedding.

    Args:
        p_ratio: fraction of the temporal slices kept, rounded to whole slices.
    """

    embeds = "kept"

    def __init__(self, *, p_ratio: float = 1.0) -> None:
        super().__init__(p_ratio=p_ratio)
        self._slices: list[int] | None = None
        self._grid: tuple[int, int, int] | None = None

    def setup(self, backbone) -> None:
        T = backbone.config.grid[0]
        # keep_count's rounding, but a P that rounds to no slice is not raised to one (on 8
        # slices P < 1/16 would keep twice what it asks for, or more)
        keep = keep_count(T, self.p_ratio) if T * self.p_ratio >= 0.5 - 1e-9 else 0
        slices = stride_slices(T, keep)
        if slices is None:
            reachable = [k for k in range(T, 0, -1) if stride_slices(T, k) is not None]
            raise UnreachableError(
                f"frames: P-Ratio {self.p_ratio:g} rounds to {keep} of {T} temporal slices, which no uniform stride "
                f"keeps; reachable: P = {', '.join(f'{k / T:g}' for k in reachable)}"
            )
        self._slices, self._grid = slices, backbone.config.grid

    def describe(self) -> dict[str, Any]:
        if self._slices is None:
            return {}
        T = self._grid[0]
        stride = self._slices[1] - self._slices[0] if len(self._slices) > 1 else T
        return {"slices": self._slices, "stride": stride, "kept_slices": len(self._slices), "of_slices": T,
                "p_effective": len(self._slices) / T}

    def before_embed(self, clips: Clips, num_patches: int) -> Tensor | None:
        if self._slices is None:
            raise TokbenchError("frames: setup(backbone) must run before the forward pass")
        T, H, W = self._grid
        if len(self._slices) == T:
            return None
        per_slice = H * W
        device = clips.video.device
        index = (torch.tensor(self._slices, device=device)[:, None] * per_slice
                 + torch.arange(per_slice, device=device)[None, :]).flatten()  # (K * H'W',) in (t, h, w) order
        return index.expand(clips.video.shape[0], -1)


@register_method("resolution")
class Resolution(Method):
    """Resize the clip so that the patch grid keeps about P of the tokens (fewer pixels).

    Args:
        p_ratio: target fraction of the tokens; the nearest square grid is used.
    """

    embeds = "kept"

    def __init__(self, *, p_ratio: float = 1.0) -> None:
        super().__init__(p_ratio=p_ratio)
        self._side: int | None = None  # grid side in patches, and the native one (from setup)
        self._native: int | None = None
        self._state: dict[str, Any] = {}

    def setup(self, backbone) -> None:
        c = backbone.config
        T, H, W = c.grid
        if H != W:
            raise TokbenchError(f"resolution: needs a square patch grid, got {H} x {W}")
        side = nearest_side(H, self.p_ratio)
        if side == 0:
            raise UnreachableError(f"resolution: P-Ratio {self.p_ratio:g} is nearer to no token than to one patch a "
                                   f"side (P = {1 / H**2:.3g}) on a {H} x {H} patch grid")
        self._side = side
        self._state = {"side": side, "img_size": side * c.patch_size, "grid": [T, side, side],
                       "tokens": T * side * side, "p_effective": side * side / (H * W)}
        self._native = H
        # Compute (and memoise) the grid's position table now, so that FLOP counting, which
        # traces the forward pass after setup, sees no sin/cos ops that only build a constant.
        backbone.position_embedding((T, side, side))

    def describe(self) -> dict[str, Any]:
        return dict(self._state)

    def input_video(self, clips: Clips) -> Tensor:
        if self._side is None:
            raise TokbenchError("resolution: setup(backbone) must run before the forward pass")
        if self._side == self._native:
            return clips.video
        return resize_clip(clips.video, self._state["img_size"])
