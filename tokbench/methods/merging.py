"""Bipartite soft matching and weighted merging: pure functions on (B, N, C) tensors.

The core of ToMe (Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023;
facebookresearch/ToMe ``tome/merge.py``) and of vid-TLDR (Choi et al., CVPR 2024;
mlvlab/vid-TLDR ``multi_modality/utils/vid_TLDR.py``), written for tokbench: no module
state, every input and output explicit.

Matching (both papers): split the tokens alternately into A (even positions) and B (odd
positions); each A token finds its most similar B token by cosine similarity of a metric;
the ``r`` A tokens with the most similar partners are merged into them. The result keeps
the unmerged A tokens followed by all B tokens: N -> N - r. The unmerged A tokens stay in
their order (``keep_order=True``: vid-TLDR, and ToMe with a class token) or in descending
order of their best match (``keep_order=False``: ToMe without a class token, whose
``tome/merge.py`` sorts them back only ``if class_token``). The order matters from the
second merge on, since the next block splits A/B by position in the current sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Matching", "bipartite_soft_matching", "merge_weighted", "merge_keep_dst", "attention_saliency"]


@dataclass(frozen=True)
class Matching:
    """Which A tokens merge into which B tokens.

    Attributes:
        unm_idx: (B, nA - r) positions in A of the tokens kept: in their original order
            (``keep_order``), else in descending order of their best-match score.
        src_idx: (B, r) positions in A of the tokens merged away.
        dst_idx: (B, r) positions in B that receive them.
    """

    unm_idx: Tensor
    src_idx: Tensor
    dst_idx: Tensor

    @property
    def r(self) -> int:
        return self.src_idx.shape[1]

    def merge(self, x: Tensor, *, src_weight: Tensor | None = None) -> Tensor:
        """Sum-merge ``x`` (B, N, C): (B, N - r, C) = [unmerged A rows, B rows + their
        merged A rows]. ``src_weight`` (B, nA, 1) scales each A row before it is added (vid-TLDR)."""
        a, b = x[:, ::2], x[:, 1::2]
        C = x.shape[-1]
        unm = a.gather(1, self.unm_idx[..., None].expand(-1, -1, C))
        src = a.gather(1, self.src_idx[..., None].expand(-1, -1, C))
        if src_weight is not None:
            src = src * src_weight.gather(1, self.src_idx[..., None])
        dst = b.scatter_reduce(1, self.dst_idx[..., None].expand(-1, -1, C), src, reduce="sum")
        return torch.cat([unm, dst], dim=1)

    def keep_dst(self, x: Tensor) -> Tensor:
        """The same reordering for per-token labels that do not add up (original
        positions): (B, N, ...) -> (B, N - r, ...), each B token keeps its own value."""
        a, b = x[:, ::2], x[:, 1::2]
        idx = self.unm_idx.reshape(*self.unm_idx.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
        return torch.cat([a.gather(1, idx), b], dim=1)


def bipartite_soft_matching(metric: Tensor, r: int, *, protected: int = 0, keep_order: bool = True) -> Matching | None:
    """ToMe's bipartite soft matching.

    Args:
        metric: (B, N, d) similarity metric (ToMe: head-mean keys; vid-TLDR: hidden states).
        r: tokens to merge away; capped at (N - protected) // 2 as ToMe caps it.
        protected: the first ``protected`` tokens (CLS) are never merged away or into.
        keep_order: put the unmerged A tokens back in position order. vid-TLDR always
            does (mlvlab/vid-TLDR ``vid_TLDR.py``); ToMe does only with a class token
            (facebookresearch/ToMe@af95e4b ``tome/merge.py:bipartite_soft_matching``,
            ``if class_token: unm_idx = unm_idx.sort(dim=1)[0]``), so ToMe passes
            ``keep_order=protected > 0``. Without it they stay in descending score order.

    Returns:
        The :class:`Matching`, or ``None`` when nothing is merged (r <= 0 after the cap).

    Ties are broken by position (a stable sort), so the result is deterministic.
    """
    N = metric.shape[1]
    r = min(int(r), (N - protected) // 2)
    if r <= 0:
        return None
    with torch.no_grad():
        m = metric / metric.norm(dim=-1, keepdim=True)
        a, b = m[:, ::2], m[:, 1::2]
        scores = a @ b.transpose(-1, -2)  # (B, ceil(N/2), floor(N/2)) cosine similarity
        if protected:
            # Prefix token i sits in A (row i/2) if i is even, in B (column i//2) if odd.
            scores[:, : (protected + 1) // 2, :] = -torch.inf
            scores[:, :, : protected // 2] = -torch.inf
        node_max, node_idx = scores.max(dim=-1)  # each A token's best B partner
        order = node_max.argsort(dim=-1, descending=True, stable=True)
        src_idx = order[:, :r]
        unm_idx = order[:, r:]
        if keep_order:
            unm_idx = unm_idx.sort(dim=-1).values  # A's original order (prefix first)
        dst_idx = node_idx.gather(1, src_idx)
    return Matching(unm_idx=unm_idx, src_idx=src_idx, dst_idx=dst_idx)


def merge_weighted(matching: Matching, x: Tensor, size: Tensor, *,
                   src_weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Size-weighted average merge (ToMe ``merge_wavg``; vid-TLDR's when ``src_weight``).

    Args:
        x: (B, N, C) tokens. size: (B, N, 1) patches each stands for.
        src_weight: (B, nA, 1) vid-TLDR's sharpened saliency of each A token: a merged
            token adds ``src_weight * size`` of mass (0 = background, effectively pruned).

    Returns:
        (x (B, N - r, C), size (B, N - r, 1)): x_dst = sum(w * size * x) / sum(w * size).
    """
    dtype = x.dtype
    x, size = x.float(), size.float()  # the sums run in float32, as vid-TLDR's merge does
    merged = matching.merge(x * size, src_weight=src_weight)
    size = matching.merge(size, src_weight=src_weight)
    return (merged / size).to(dtype), size


def merge_keep_dst(matching: Matching, index: Tensor) -> Tensor:
    """Original patch positions after a merge: (B, N) -> (B, N - r); a merged token keeps
    its B token's position."""
    return matching.keep_dst(index)


def attention_saliency(probs: Tensor) -> Tensor:
    """vid-TLDR's sharpened saliency ("attention sharpness"), (B, heads, N, N) -> (B, N, 1).

    s_i = sum_j A_ij log A_ij of the head-mean attention (negative row entropy: a query
    that attends sharply is salient); min-max normalised over tokens; tokens below the mean
    are background (0); the rest are (s - mean) / max(s - mean), in (0, 1].

    Guard (not in the reference code, which divides by zero): when every s is equal there
    is no foreground to find and every token gets weight 1, i.e. plain ToMe-style averaging.
    """
    a = probs.float().mean(dim=1)  # (B, N, N)
    s = torch.xlogy(a, a).sum(dim=-1, keepdim=True)  # 0 log 0 = 0 (padding keys)
    s = s - s.amin(dim=1, keepdim=True)
    span = s.amax(dim=1, keepdim=True)
    s = s / span.clamp_min(torch.finfo(s.dtype).tiny)
    mean = s.mean(dim=1, keepdim=True)
    background = s < mean
    s = s - mean
    top = s.amax(dim=1, keepdim=True)
    s = (s / top.clamp_min(torch.finfo(s.dtype).tiny)).masked_fill(background, 0.0)
    flat = (span <= 0) | (top <= 0)  # (B, 1, 1): all tokens equally salient
    return torch.where(flat, torch.ones_like(s), s)
