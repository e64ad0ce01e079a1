"""The explicit token state passed into and returned by every method hook.

No module holds hidden state: what a method needs to know about the tokens (where each
came from, how many patches it stands for, which are padding) travels in a
:class:`Tokens` value, and what it needs to know about the batch (the video, stable clip
ids for per-clip seeding, labels for privileged methods) travels in :class:`Clips`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Clips", "Tokens", "gather_tokens"]


def gather_tokens(x: Tensor, idx: Tensor) -> Tensor:
    """Gather rows ``idx`` (B, K) of ``x`` (B, N, ...) along dim 1 -> (B, K, ...)."""
    expand = idx.reshape(*idx.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
    return x.gather(1, expand)


@dataclass(frozen=True)
class Clips:
    """The batch as methods see it.

    Attributes:
        video: (B, C, T, H, W) normalised pixels.
        ids: (B,) int64 stable clip ids, so that a method seeded "per clip" draws the same
            selection for a clip whatever batch it lands in. ``arange(B)`` when unknown.
        labels: (B,) class indices or (B, C) multi-hot targets; only privileged methods
            (LITE's oracle) may read them. ``None`` when not available.
    """

    video: Tensor
    ids: Tensor
    labels: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.video.shape[0]


@dataclass(frozen=True)
class Tokens:
    """Token state between backbone stages.

    Attributes:
        x: (B, N, D) hidden states, the ``n_prefix`` prefix tokens (CLS) first.
        index: (B, N - n_prefix) int64 original patch position of each patch token in the
            flattened (t, h, w) tubelet grid (of the clip the backbone tokenized: the native
            grid unless a method resized the clip); used to gather position embeddings and
            to draw selections.
        n_prefix: prefix tokens that are never dropped or merged.
        size: (B, N, 1) patches each token stands for (merging methods), or ``None`` for
            all ones. Used for proportional attention and size-weighted pooling.
        mask: (B, N) bool, ``True`` for real tokens and ``False`` for padding in
            variable-length batches; ``None`` when every token is real.
        source: (B, N, N0) which of the N0 original patches each token holds (rows of
            prefix tokens are zero), or ``None``: tracked only when asked for
            (:meth:`VideoViT.trace_tokens`, for ``tokbench viz``), as ToMe's ``trace_source``.
            Dropping gathers rows; merging adds them.
    """

    x: Tensor
    index: Tensor
    n_prefix: int = 0
    size: Tensor | None = None
    mask: Tensor | None = None
    source: Tensor | None = None

    @property
    def n_patches(self) -> int:
        """Patch tokens per clip (padding included)."""
        return self.x.shape[1] - self.n_prefix

    def replace(self, **changes) -> Tokens:
        return dataclasses.replace(self, **changes)

    def keep(self, idx: Tensor) -> Tokens:
        """Keep the patch tokens at positions ``idx`` (B, K) of the current patch tokens.

        Prefix tokens are always kept, in front. ``size``, ``mask`` and ``source`` follow the tokens.
        """
        p = self.n_prefix
        x = gather_tokens(self.x[:, p:], idx)
        def follow(t: Tensor | None) -> Tensor | None:
            return None if t is None else torch.cat([t[:, :p], gather_tokens(t[:, p:], idx)], dim=1)

        return Tokens(
            x=torch.cat([self.x[:, :p], x], dim=1) if p else x,
            index=self.index.gather(1, idx),
            n_prefix=p,
            size=follow(self.size),
            mask=follow(self.mask),
            source=follow(self.source),
        )
