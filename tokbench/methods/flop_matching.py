"""Closed-form FLOPs of the shared backbone, and the keep-ratio mappings built on them.

Merging methods (ToMe, vid-TLDR, STA) have no keep ratio: tokbench maps a P-Ratio to their
schedule by FLOP matching, i.e. the schedule whose cost is closest
to that of keeping ``keep_count(N, P)`` patch tokens right after the (full) patch
embedding. Searching a schedule with fvcore would trace the model once per candidate, so
the search uses the closed form below; it reproduces fvcore's count of
:class:`~tokbench.backbones.vit.VideoViT` exactly (tested against fvcore on several
geometries), and the measured GFLOPs recorded for every cell still come from fvcore.

Convention (fvcore's): one multiply-add = one FLOP; LayerNorm = 5 FLOPs per element;
biases, softmax, GELU, residual adds, sorting and scatter are free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tokbench.errors import UnreachableError
from tokbench.methods.base import keep_count

__all__ = [
    "block_flops", "model_flops", "reference_gflops", "merge_schedule", "MergeFit",
    "fit_merge_schedule", "tome_r_list", "front_loaded_r_list", "closest_cost",
]


def block_flops(config, n: int, m: int, match_dim: int = 0, matched: bool = False) -> int:
    """FLOPs of one pre-norm block whose attention sees ``n`` tokens and whose MLP sees
    ``m`` (a merge between them), plus the bipartite-matching matmul of ``match_dim``-wide
    metrics (ceil(n/2) x floor(n/2) scores) when ``matched``."""
    D = config.embed_dim
    hidden = int(D * config.mlp_ratio)
    attn = 5 * n * D + 3 * n * D * D + 2 * n * n * D + n * D * D
    mlp = 5 * m * D + 2 * m * D * hidden
    match = math.ceil(n / 2) * (n // 2) * match_dim if matched else 0
    return attn + mlp + match


def model_flops(config, *, embedded: int, tokens: Sequence[int], after: Sequence[int] | None = None,
                match_dim: int = 0) -> int:
    """FLOPs of one clip through the backbone.

    Args:
        config: the backbone's :class:`~tokbench.backbones.vit.VideoViTConfig`.
        embedded: tubelets that go through the patch embedding.
        tokens: tokens entering each block (prefix included), ``depth`` entries.
        after: tokens after each block's merge (default: no merge, = ``tokens``).
        match_dim: width of the matching metric in blocks that merge (0 = none counted).
    """
    after = list(tokens) if after is None else list(after)
    C, t, p, D = config.in_chans, config.tubelet_size, config.patch_size, config.embed_dim
    total = embedded * C * t * p * p * D
    for n, m in zip(tokens, after):
        total += block_flops(config, n, m, match_dim, matched=m < n)
    final = after[-1]
    total += 5 * final * D if config.global_pool == "token" else 5 * D  # norm on all tokens, or fc_norm
    total += D * config.num_classes
    return total


def reference_gflops(config, p_ratio: float) -> float:
    """F(P): GFLOPs of keeping ``keep_count(N, P)`` patch tokens after embedding all N
    (on VideoMAE ViT-B: 180.49 / 117.43 / 79.84 / 45.88 GFLOPs at P = 1 / 0.7 / 0.5 / 0.3): the
    target of FLOP matching."""
    k = keep_count(config.num_patches, p_ratio) + config.n_prefix
    return model_flops(config, embedded=config.num_patches, tokens=[k] * config.depth) / 1e9


def merge_schedule(n0: int, prefix: int, r_list: Sequence[int]) -> tuple[list[int], list[int]]:
    """Tokens entering each block and left after its merge, for requested merges
    ``r_list`` capped at half of the unprotected tokens, as ToMe and vid-TLDR cap them."""
    before, after, n = [], [], n0
    for r in r_list:
        before.append(n)
        n -= max(0, min(int(r), (n - prefix) // 2))
        after.append(n)
    return before, after


def tome_r_list(r: int, depth: int, schedule: str) -> list[int]:
    """ToMe's ``parse_r``: ``constant`` r in every block, or ``decreasing`` = ToMe's
    ``(r, -1)``, linear from 2r in the first block to 0 in the last."""
    if schedule == "constant":
        return [r] * depth
    lo, hi = 2 * r, 0  # parse_r with inflect = -1: min_val = 2r, max_val = 0
    step = (hi - lo) / max(depth - 1, 1)
    return [int(lo + step * i) for i in range(depth)]


def front_loaded_r_list(n0: int, prefix: int, target: int, depth: int) -> list[int]:
    """vid-TLDR's front-loaded schedule (its configs merge early): halve the tokens in each block
    until ``target`` tokens (prefix included) remain, then stop merging."""
    r_list, n = [], n0
    for _ in range(depth):
        r = max(0, min((n - prefix) // 2, n - target))
        r_list.append(r)
        n -= r
    return r_list


@dataclass(frozen=True)
class MergeFit:
    """A FLOP-matched merge schedule."""

    r_list: list[int]  # merges requested per block
    tokens: list[int]  # tokens entering each block (prefix included)
    after: list[int]  # tokens after each block's merge
    gflops: float  # closed-form cost of the schedule
    target_gflops: float  # F(P)

    @property
    def rel_error(self) -> float:
        return self.gflops / self.target_gflops - 1


def fit_merge_schedule(config, p_ratio: float, *, candidates, match_dim: int, method: str) -> MergeFit:
    """The candidate schedule whose cost is closest to F(P).

    Args:
        candidates: iterable of per-block r lists, from no merging to the most merging.
        match_dim: width of the matching metric (counted by fvcore as a matmul).
        method: name used in the error message.

    Raises:
        UnreachableError: F(P) is below the cheapest candidate (the merging floor: the
            first block always attends over every token, and a block merges at most half).
    """
    target = reference_gflops(config, p_ratio)
    n0, prefix = config.num_patches + config.n_prefix, config.n_prefix
    fits = []
    for r_list in candidates:
        before, after = merge_schedule(n0, prefix, r_list)
        g = model_flops(config, embedded=config.num_patches, tokens=before, after=after, match_dim=match_dim) / 1e9
        fits.append(MergeFit(list(r_list), before, after, g, target))
    best = closest_cost([f.gflops for f in fits], target, method=method, p_ratio=p_ratio, what="merging",
                        why="the first block attends over all tokens")
    return fits[best]


def closest_cost(costs: Sequence[float], target: float, *, method: str, p_ratio: float, what: str, why: str) -> int:
    """Index of the candidate whose cost (GFLOPs) is closest to ``target`` = F(P), the
    first on ties: FLOP matching's one rule, shared by the merging methods and STA.

    Raises:
        UnreachableError: ``target`` is below every candidate and the cheapest misses it by
            more than 1 % (below the floor the closest candidate is the floor itself:
            reported, never clamped). The message says ``what`` cannot go lower and ``why``.
    """
    if not costs:
        raise UnreachableError(f"{method}: no schedule to match P-Ratio {p_ratio:g} with")
    best = min(range(len(costs)), key=lambda i: abs(costs[i] - target))
    floor = min(costs)
    if target < floor and abs(costs[best] / target - 1) > 0.01:
        raise UnreachableError(
            f"{method}: P-Ratio {p_ratio:g} needs {target:.4g} GFLOPs but {what} cannot go below "
            f"{floor:.4g} GFLOPs on this backbone ({why})"
        )
    return best
