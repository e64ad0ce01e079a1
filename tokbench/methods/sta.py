"""``sta``: Semantic-aware Temporal Accumulation (Ding et al., "Prune Spatio-temporal Tokens
by Semantic-aware Temporal Accumulation", ICCV 2023; arXiv 2308.04549).

Reference: Mark12Ding/STA ``model_vit.py`` @ faf10be5af889afed737e13517c4904c8572c3d7
(``VisionTransformer.merge``, ``Attention.forward`` returning the head-mean keys,
``forward_features`` and the FLOP sweep in ``__main__``).

What upstream computes, and tokbench with it. After blocks 0, L//3 and 2L//3 (``merge``'s
``index``; 0, 4, 8 on ViT-B) the patch tokens are cut into temporal groups: the 8 tubelet
slices, then 4 pairs of slices, then 2 halves of the clip. Every group loses ``r`` tokens,
so ViT-B at r = 48 runs 1568, 4 x 1184, 4 x 992 and 3 x 896 tokens. Pruned tokens are
dropped, not merged. Within a stage the groups are visited in time order (backwards at the
L//3 stage) and each group's tokens are scored against the group visited before:

* the first group visited has no predecessor: ToMe's bipartite split (even / odd positions),
  each even token's best cosine similarity with an odd one on the normalised head-mean keys,
  and the ``r`` even tokens most similar to an odd one are dropped (upstream's ``tome_drop``
  puts the odd tokens first, then the even ones by ascending similarity, and cuts the last r);
* every later group g, with normalised keys k (B, n, d) and the previous group's keys k'
  (all n of them for the second group, only the kept n - r after that):
  ``F = softmax_i(k_i . k'_j)`` (over this group's tokens i: each previous token spreads a
  unit of mass over the tokens that resemble it), and the **temporal accumulation**
  ``A_i = sum_j F_ij`` for the second group, ``A_i = sum_j F_ij A'_j`` later, A' being the
  previous group's kept A renormalised to sum 1: how much of what was already seen flows
  into token i (redundancy, accumulated along time);
* the **semantic score** is the L1 norm of each token's features after the block,
  min-max normalised within the group: ``S_i = (|x_i|_1 - min) / (max - min)``;
* ``STA_i = A_i (1 - S_i)``; the n - r tokens with the *lowest* STA are kept (redundant and
  unimportant tokens go), in ascending STA order.

Kept tokens stay grouped in time order (upstream's concatenation), so the next stage's
groups are contiguous; token order inside a group follows upstream, which matters because
the next stage's bipartite split is by position.

The knob is ``r``, tokens dropped per temporal group per stage (upstream's ``--r``, "the
prune number of the first stage"). P-Ratio mapping: like ToMe, r is chosen by FLOP
matching, the r whose closed-form cost (the three stages' score matmuls included) is
closest to F(P), the cost of keeping ``keep_count(N, P)`` tokens after the embedding; a P
below the cost at the largest r that leaves every group a token is unreachable.
``r=...`` fixes r instead (P is then a label). On ``videomae_b``, r = 48 counts 115.86
GFLOPs, the 116 of LITE's Tables 1-2 and exactly what upstream's own fvcore sweep counts
for ViT-B with a 400-class head.

Generalised beyond upstream's fixed ViT-B/L geometry (8 slices; 12 or 24 blocks):

* stage k (k = 0, 1, 2 at blocks 0, L//3, 2L//3) has max(1, T' >> k) groups, T' the tubelet
  slices (upstream hard-codes 8, 4, 2); each stage's groups must split the previous
  stage's evenly;
* on shallow backbones a stage whose block repeats an earlier one is skipped (upstream's
  if/elif keeps the first), and so is a stage after the last block, where dropping saves
  nothing (4 blocks, the zoo: blocks 0, 1, 2; 2 blocks: block 0 only);
* prefix (CLS) tokens are never scored or dropped;
* when every token of a group has the same L1 norm, upstream divides by zero; tokbench
  gives them all S = 0 (the temporal score alone decides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.methods.base import Method
from tokbench.methods.flop_matching import closest_cost, model_flops, reference_gflops
from tokbench.methods.registry import register_method
from tokbench.tokens import Tokens, gather_tokens

__all__ = ["STA", "Stage", "sta_stages", "semantic_scores", "first_group_order", "sta_keep_indices", "sta_flops"]


@dataclass(frozen=True)
class Stage:
    """One pruning stage: after ``block``, ``groups`` temporal groups of ``tokens`` patch
    tokens each lose ``r`` tokens; visited backwards in time when ``reverse``."""

    block: int
    groups: int
    tokens: int
    reverse: bool

    def as_dict(self, r: int) -> dict[str, Any]:
        return {"block": self.block, "groups": self.groups, "group_tokens": self.tokens,
                "kept_per_group": self.tokens - r, "reverse": self.reverse}


def sta_stages(depth: int, grid: tuple[int, int, int], r: int) -> list[Stage]:
    """The stages STA runs with ``r`` on a backbone of ``depth`` blocks and tubelet ``grid``
    (T', H', W'); none when r = 0 (upstream prunes only when r > 0).

    Raises:
        TokbenchError: r leaves a group with no token, or T' does not halve into the groups.
    """
    if r <= 0:
        return []
    T, H, W = grid
    stages: list[Stage] = []
    n, groups = H * W, T  # patch tokens per group, groups of the last stage
    for k, block in enumerate((0, depth // 3, 2 * depth // 3)):
        if block >= depth - 1 or any(s.block == block for s in stages):
            continue  # nothing after it to save, or upstream's elif: the first stage at a block wins
        g = max(1, T >> k)
        if groups % g:
            raise TokbenchError(f"sta: {T} temporal slices do not halve into {g} groups at block {block}; "
                                "STA needs T' to halve evenly (8, 16, ...)")
        if stages:
            n = (n - r) * (groups // g)  # the kept tokens of the groups merged into one
        if n - r < 1:
            raise TokbenchError(f"sta: r={r} leaves no token in the {n}-token temporal groups after block {block}; "
                                f"r must be at most {n - 1} there")
        stages.append(Stage(block=block, groups=g, tokens=n, reverse=k % 2 == 1))
        groups = g
    return stages


def max_r(depth: int, grid: tuple[int, int, int]) -> int:
    """The largest r that leaves every temporal group at least one token."""
    lo, hi = 0, grid[1] * grid[2]
    while lo < hi:  # fewer tokens per group as r grows: bisect the last valid r
        mid = (lo + hi + 1) // 2
        try:
            sta_stages(depth, grid, mid)
            lo = mid
        except TokbenchError:
            hi = mid - 1
    return lo


def tokens_per_block(depth: int, num_patches: int, prefix: int, stages: list[Stage], r: int) -> list[int]:
    """Tokens entering each block (prefix included)."""
    counts, n = [], num_patches
    after = {s.block: s.groups * (s.tokens - r) for s in stages}
    for block in range(depth):
        counts.append(n + prefix)
        n = after.get(block, n)
    return counts


def score_matmul_flops(stages: list[Stage], r: int, head_dim: int) -> int:
    """fvcore's count of STA's matmuls (the norms, softmax and top-k are free): per stage,
    the first group's bipartite similarity ceil(n/2) x floor(n/2) x d, the second group's
    n x n x d against all n previous tokens, then n x (n - r) x d and the accumulation's
    n x (n - r) x 1 for every later group."""
    total = 0
    for s in stages:
        n, d = s.tokens, head_dim
        total += -(-n // 2) * (n // 2) * d
        if s.groups >= 2:
            total += n * n * d + (s.groups - 2) * n * (n - r) * (d + 1)
    return total


def sta_flops(config, r: int) -> tuple[int, list[Stage], list[int]]:
    """Closed-form FLOPs of STA with ``r`` on a backbone config (fvcore's convention, equal
    to its count, tested): (FLOPs, stages, tokens entering each block)."""
    stages = sta_stages(config.depth, config.grid, r)
    tokens = tokens_per_block(config.depth, config.num_patches, config.n_prefix, stages, r)
    flops = model_flops(config, embedded=config.num_patches, tokens=tokens)
    return flops + score_matmul_flops(stages, r, config.embed_dim // config.num_heads), stages, tokens


# -- the scores: pure functions on (B, ...) tensors ----------------------------------------

def semantic_scores(x: Tensor) -> Tensor:
    """STA's semantic score: (B, G, n, D) tokens -> (B, G, n), the L1 norm of each token
    min-max normalised within its group (1 = the most important token of the group)."""
    norm = x.abs().sum(dim=-1)
    low = norm.amin(dim=-1, keepdim=True)
    span = norm.amax(dim=-1, keepdim=True) - low
    # Upstream divides by a zero span (NaN); then every token gets 0.
    return (norm - low) / span.clamp_min(torch.finfo(norm.dtype).tiny)


def first_group_order(metric: Tensor) -> Tensor:
    """Upstream's ``tome_drop`` order of the first group visited: (B, n, d) normalised keys
    -> (B, n) positions, the odd positions first, then the even ones by ascending best
    similarity to an odd one; keeping the first n - r drops the r most redundant even tokens."""
    a, b = metric[:, ::2], metric[:, 1::2]
    best = (a @ b.transpose(1, 2)).amax(dim=-1)  # (B, ceil(n/2)) each even token's closest odd one
    n = metric.shape[1]
    odd = torch.arange(1, n, 2, device=metric.device).expand(metric.shape[0], -1)
    even = 2 * best.argsort(dim=-1, stable=True)
    return torch.cat([odd, even], dim=1)


def sta_keep_indices(x: Tensor, metric: Tensor, *, groups: int, r: int, reverse: bool = False) -> Tensor:
    """One STA stage on the patch tokens.

    Args:
        x: (B, N, D) patch tokens after the block, N = groups * n in time order.
        metric: (B, N, d) their head-mean keys from the block's attention.
        groups: temporal groups G (each n = N / G contiguous tokens).
        r: tokens dropped per group, 1 <= r < n.
        reverse: visit the groups backwards in time (upstream's L//3 stage).

    Returns:
        (B, G * (n - r)) positions in ``x`` of the tokens kept: group by group in time
        order, each group in upstream's order.
    """
    B, N, D = x.shape
    n = N // groups
    m = metric / metric.norm(dim=-1, keepdim=True)
    m = m.reshape(B, groups, n, -1)
    semantic = semantic_scores(x.reshape(B, groups, n, D))
    order = list(range(groups))[::-1] if reverse else list(range(groups))
    kept: dict[int, Tensor] = {order[0]: first_group_order(m[:, order[0]])[:, : n - r]}
    previous = m[:, order[0]]  # the second group is compared with all n tokens of the first
    accumulated = None
    for g in order[1:]:
        # (B, n_prev, n): row j spreads previous token j's unit of mass over this group's tokens
        # (upstream's softmax over dim 1 of the transpose; a softmax over the last dim is faster)
        flow = (previous @ m[:, g].transpose(1, 2)).softmax(dim=-1)
        if accumulated is None:
            accumulated = flow.sum(dim=1)  # (B, n)
        else:
            accumulated = (accumulated[:, None, :] @ flow)[:, 0]  # (B, n): mass carried along time
        sta = accumulated * (1 - semantic[:, g])
        keep = sta.topk(n - r, dim=1, largest=False).indices  # (B, n - r), ascending STA
        kept[g] = keep
        accumulated = accumulated.gather(1, keep)
        accumulated = accumulated / accumulated.sum(dim=1, keepdim=True)
        previous = gather_tokens(m[:, g], keep)
    return torch.cat([kept[g] + g * n for g in range(groups)], dim=1)


@register_method("sta")
class STA(Method):
    """STA pruning after blocks 0, L//3 and 2L//3, r tokens per temporal group, FLOP-matched to P.

    Args:
        p_ratio: FLOP-matched keep ratio (ignored when ``r`` is given).
        r: tokens dropped per temporal group at every stage (upstream's ``--r``; 48 is the
            116-GFLOP point on ViT-B), instead of FLOP matching; ``None`` to match P.
    """

    attn_needs = "keys"

    def __init__(self, *, p_ratio: float = 1.0, r: int | None = None) -> None:
        super().__init__(p_ratio=p_ratio)
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 0):
            raise TokbenchError(f"sta: r must be a non-negative integer or None, got {r!r}")
        self.r = r
        self._r: int | None = None
        self._stages: dict[int, Stage] = {}
        self._fit: dict[str, Any] = {}

    def setup(self, backbone) -> None:
        config = backbone.config
        if self.r is not None:
            flops, stages, tokens = sta_flops(config, self.r)
            r, fit = self.r, {"closed_form_gflops": flops / 1e9}
        else:
            target = reference_gflops(config, self.p_ratio)
            costs = [sta_flops(config, r)[0] / 1e9 for r in range(max_r(config.depth, config.grid) + 1)]
            r = closest_cost(costs, target, method="sta", p_ratio=self.p_ratio, what="pruning",
                             why="the first block sees every token; every temporal group keeps one")
            _, stages, tokens = sta_flops(config, r)
            fit = {"closed_form_gflops": costs[r], "target_gflops": target}
        self._r, self._stages = r, {s.block: s for s in stages}
        self._fit = {"r": r, "stages": [s.as_dict(r) for s in stages], "tokens": tokens, **fit}

    def describe(self) -> dict[str, Any]:
        return dict(self._fit)

    def attention_needs(self, layer: int) -> Literal["keys", "probs"] | None:
        if self._r is None:
            raise TokbenchError("sta: setup(backbone) must run before the forward pass")
        return "keys" if layer in self._stages else None

    def after_block(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        stage = self._stages.get(layer)
        if stage is None:
            return tokens
        if tokens.mask is not None:
            raise TokbenchError("sta does not support padded (variable-length) batches")
        p = tokens.n_prefix
        metric = attn.mean(dim=1)[:, p:]  # (B, N, d) keys averaged over heads, as upstream's Attention returns
        idx = sta_keep_indices(tokens.x[:, p:], metric, groups=stage.groups, r=self._r, reverse=stage.reverse)
        return tokens.keep(idx)
