"""``motion`` and ``attention``: the simple-cue baselines of LITE's Principle 2.

Hao et al., "Principles of Visual Tokens for Efficient Video Understanding" (ICCV 2025,
arXiv 2411.13626), §3: selecting tokens by the magnitude of motion (motion vectors) or by
the attention the model pays them is "very much on-par with the random baseline" or worse.
They show whether a method beats simple cues. No official code; tokbench's versions:

- ``motion``: the mean absolute frame-to-frame pixel change inside each tubelet (frame
  differences stand in for codec motion vectors, which decoded clips no longer carry);
  keeps the top ``keep_count(N, P)`` before the patch embedding, so only they are embedded.
- ``attention``: the attention each patch token receives in block ``layer`` (mean over
  heads and queries); keeps the top ``keep_count(N, P)`` right after that block's
  attention, so that block's attention sees every token and its MLP and the later blocks
  see the kept ones.
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.methods.base import Method, SelectionMethod, keep_count, top_k_indices
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips, Tokens

__all__ = ["MotionCue", "AttentionCue", "motion_magnitude", "attention_received"]


def motion_magnitude(video: Tensor, tubelet: int, patch: int) -> Tensor:
    """(B, C, T, H, W) -> (B, N): mean |f_i - f_{i-1}| over the frames i of each tubelet,
    its p x p pixels and the channels, flattened in (t, h, w) order. Frame 0 has no
    predecessor and uses |f_1 - f_0|."""
    diff = (video[:, :, 1:] - video[:, :, :-1]).abs().float()  # (B, C, T-1, H, W)
    diff = F.pad(diff, (0, 0, 0, 0, 1, 0), mode="replicate") if diff.shape[2] else diff  # frame 0 := 1 - 0
    diff = diff.mean(dim=1, keepdim=True)
    pooled = F.avg_pool3d(diff, kernel_size=(tubelet, patch, patch))  # (B, 1, T', H', W')
    return pooled.flatten(1)


def attention_received(probs: Tensor, n_prefix: int) -> Tensor:
    """(B, heads, N, N) attention probabilities -> (B, N - n_prefix): the attention each
    patch token receives, averaged over heads and over every query (prefix included)."""
    return probs.float().mean(dim=(1, 2))[:, n_prefix:]


@register_method("motion")
class MotionCue(SelectionMethod):
    """Keep the tubelets with the largest pixel motion (LITE's motion-vector cue)."""

    scores_need_tokens = False

    def setup(self, backbone) -> None:
        self._tubelet, self._patch = backbone.config.tubelet_size, backbone.config.patch_size

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        if clips.video.is_meta:  # FLOP counting: the selection's cost does not depend on content
            return clips.video.new_zeros(clips.video.shape[0], num_patches)
        return motion_magnitude(clips.video, self._tubelet, self._patch)


@register_method("attention")
class AttentionCue(Method):
    """Keep the patch tokens that receive the most attention in an early block.

    Args:
        p_ratio: fraction of patch tokens kept after block ``layer``'s attention.
        layer: the block whose attention decides (0 = the first).
    """

    def __init__(self, *, p_ratio: float = 1.0, layer: int = 0) -> None:
        super().__init__(p_ratio=p_ratio)
        if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
            raise TokbenchError(f"attention: layer must be a non-negative integer, got {layer!r}")
        self.layer = layer

    def validate(self, config) -> None:
        if self.layer >= config.depth:
            raise TokbenchError(f"attention: layer {self.layer} does not exist in a {config.depth}-block backbone; "
                                f"give layer in 0..{config.depth - 1}")

    def setup(self, backbone) -> None:
        self.validate(backbone.config)

    def attention_needs(self, layer: int) -> Literal["keys", "probs"] | None:
        return "probs" if layer == self.layer and self.p_ratio < 1 else None

    def after_attn(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        if layer != self.layer or self.p_ratio >= 1:
            return tokens
        k = keep_count(tokens.n_patches, self.p_ratio)
        return tokens.keep(top_k_indices(attention_received(attn, tokens.n_prefix), k))
