"""``random``: random token drop before the patch embedding.

The baseline that "is better than most" (LITE, Hao et al., arXiv 2411.13626, Principle 1).
Reference: rccchoudhury/rlt ``src/models/static_token_utils.py::random_droptoken``
(@69ec8b4). tokbench changes: an exact top-K of seeded uniform scores (RLT's strict
``u < kthvalue`` keeps int(N*p) - 1 tokens, and its ``drop_param`` is really the keep
fraction); the generator is seeded per clip, so a clip gets the same selection whatever
batch it is in; only the kept tubelets are embedded (VideoMAE ViT-B: 78.92 GFLOPs at P = 0.5,
against 79.84 when all 1568 are embedded).
"""

from __future__ import annotations

import torch
from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.methods.base import SelectionMethod
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips, Tokens

__all__ = ["RandomDrop", "per_clip_uniform"]

# Mixes the method seed and the clip id into one 63-bit generator seed.
_SEED_STRIDE = 1_000_003


def per_clip_uniform(ids: Tensor, n: int, *, seed: int, device: torch.device) -> Tensor:
    """(B, n) uniform [0, 1) draws; row b depends only on (seed, ids[b])."""
    if device.type == "meta":  # FLOP counting traces shapes only; there are no ids to read
        return torch.rand(ids.shape[0], n, device=device)
    rows = []
    for clip_id in ids.tolist():
        gen = torch.Generator(device=device)
        gen.manual_seed((seed * _SEED_STRIDE + int(clip_id)) % (2**63))
        rows.append(torch.rand(n, generator=gen, device=device))
    return torch.stack(rows)


@register_method("random")
class RandomDrop(SelectionMethod):
    """Keep ``round(p_ratio * N)`` tubelets drawn uniformly at random per clip.

    Args:
        p_ratio: fraction of patch tokens kept.
        seed: base seed; clip ``i`` uses a generator seeded from ``(seed, i)``.
    """

    scores_need_tokens = False

    def __init__(self, *, p_ratio: float = 1.0, seed: int = 0) -> None:
        super().__init__(p_ratio=p_ratio)
        # Generators take 63-bit seeds: a larger one would be folded onto a smaller one.
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise TokbenchError(f"random: seed must be a non-negative integer below 2**63, got {seed!r}")
        self.seed = seed

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        return per_clip_uniform(clips.ids, num_patches, seed=self.seed, device=clips.video.device)
