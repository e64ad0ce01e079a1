"""``tome``: Token Merging (Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023).

Reference: facebookresearch/ToMe ``tome/merge.py`` (bipartite_soft_matching, merge_wavg),
``tome/utils.py`` (parse_r), ``tome/patch/timm.py`` and ``tome/patch/mae.py``; video ports
rccchoudhury/rlt ``src/models/tome_helpers.py`` and sjpollard/video-how-do-your-tokens-merge.

In every block, between attention and MLP: bipartite soft matching on the head-mean keys,
size-weighted average merging (sizes tracked in ``Tokens.size``), prefix (CLS) tokens
protected; optional proportional attention (log size added to the logits); the final
average pool is size-weighted (ToMe's MAE patch; RLT's port omits it).

P-Ratio mapping: ToMe has no keep ratio, so ``r`` is chosen
by FLOP matching: the schedule whose closed-form cost is closest to F(P), the cost of
keeping ``keep_count(N, P)`` tokens after the embedding. The schedule actually applied
(after ToMe's cap of half the tokens per block) is in :meth:`describe`. A P below the
merging floor is unreachable. ``r=...`` fixes r instead (P is then only a label).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.methods.base import Method
from tokbench.methods.flop_matching import fit_merge_schedule, merge_schedule, model_flops, tome_r_list
from tokbench.methods.merging import bipartite_soft_matching, merge_weighted
from tokbench.methods.registry import register_method
from tokbench.tokens import Tokens

__all__ = ["ToMe", "merge_tokens"]

_SCHEDULES = ("constant", "decreasing")


def merge_tokens(tokens: Tokens, metric: Tensor, r: int, *, src_weight_fn=None, keep_order: bool | None = None) -> Tokens:
    """Merge ``r`` tokens of ``tokens`` by bipartite matching on ``metric`` (B, N, d).

    Shared by ToMe and vid-TLDR. ``src_weight_fn(matching)`` may return the (B, nA, 1)
    weights of A tokens (vid-TLDR's saliency). Prefix tokens stay first and untouched.
    ``keep_order`` (see :func:`bipartite_soft_matching`): ``None`` is ToMe's rule, position
    order only with a prefix (class) token, unmerged tokens in score order without one.
    """
    if tokens.mask is not None:
        raise TokbenchError("token merging does not support padded (variable-length) batches")
    p = tokens.n_prefix
    keep_order = p > 0 if keep_order is None else keep_order
    matching = bipartite_soft_matching(metric, r, protected=p, keep_order=keep_order)
    if matching is None:
        return tokens
    size = tokens.size if tokens.size is not None else torch.ones_like(tokens.x[..., :1])
    weight = src_weight_fn() if src_weight_fn is not None else None
    x, size = merge_weighted(matching, tokens.x, size, src_weight=weight)
    # Original positions: prefix tokens carry -1; a merged token keeps its B token's.
    pad = torch.full((tokens.index.shape[0], p), -1, dtype=tokens.index.dtype, device=tokens.index.device)
    index = matching.keep_dst(torch.cat([pad, tokens.index], dim=1))[:, p:]
    # Membership adds up whatever the mass weights (vid-TLDR's background still joins its group).
    source = None if tokens.source is None else matching.merge(tokens.source)
    return Tokens(x=x, index=index, n_prefix=p, size=size, source=source)


@register_method("tome")
class ToMe(Method):
    """Token Merging between attention and MLP of every block.

    Args:
        p_ratio: FLOP-matched keep ratio (ignored when ``r`` is given).
        schedule: ``constant`` (the same r per block, ToMe's default) or ``decreasing``
            (ToMe's ``(r, -1)``: 2r in the first block down to 0 in the last).
        r: fixed r instead of FLOP matching, or ``None``.
        prop_attn: proportional attention (log size added to the attention logits).
            ToMe's README: off for off-the-shelf MAE models, on for models trained with
            ToMe; the video ports disagree (RLT on, Pollard & Wray off). tokbench's default
            is on, by measurement: on the six zoo models (val, 500 clips) it is as good or
            better everywhere, e.g. P=0.5 sequence 76.0 vs 69.6 %, egocentric 19.2 vs
            17.4 %, appearance 51.2 vs 50.2 %, motion 94.0 vs 93.6 %. Turn it off to
            follow ToMe's MAE patch; tests/test_merging.py runs both.
    """

    attn_needs = "keys"

    def __init__(self, *, p_ratio: float = 1.0, schedule: str = "constant", r: int | None = None,
                 prop_attn: bool = True) -> None:
        super().__init__(p_ratio=p_ratio)
        if schedule not in _SCHEDULES:
            raise TokbenchError(f"tome: schedule must be one of {', '.join(_SCHEDULES)}, got {schedule!r}")
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 0):
            raise TokbenchError(f"tome: r must be a non-negative integer or None, got {r!r}")
        if not isinstance(prop_attn, bool):
            raise TokbenchError(f"tome: prop_attn must be True or False, got {prop_attn!r}")
        self.schedule, self.r, self.prop_attn = schedule, r, prop_attn
        self._r_list: list[int] | None = None
        self._fit: dict[str, Any] = {}

    @property
    def proportional_attention(self) -> bool:
        return self.prop_attn

    def validate(self, config) -> None:
        if config.n_prefix > 1:
            raise TokbenchError("tome supports at most one prefix (CLS) token")
        # ToMe caps each block at half its tokens (recorded in describe()), but an r beyond
        # the token count means nothing and a huge one overflows torch's topk.
        if self.r is not None and self.r > config.num_patches:
            raise TokbenchError(f"tome: r={self.r} is more than the backbone's {config.num_patches} patch tokens; "
                                f"give r in 0..{config.num_patches} (or leave it out to match P)")

    def setup(self, backbone) -> None:
        config = backbone.config
        self.validate(config)
        head_dim = config.embed_dim // config.num_heads
        if self.r is not None:
            self._r_list = tome_r_list(self.r, config.depth, self.schedule)
            before, after = merge_schedule(config.num_patches + config.n_prefix, config.n_prefix, self._r_list)
            gflops = model_flops(config, embedded=config.num_patches, tokens=before, after=after,
                                 match_dim=head_dim) / 1e9
            self._fit = {"r": self.r, "r_list": self._r_list, "tokens": before, "after": after,
                         "closed_form_gflops": gflops}
            return
        # Larger r never costs more; stop once every block halves (the floor).
        candidates, r = [], 0
        while True:
            r_list = tome_r_list(r, config.depth, self.schedule)
            candidates.append(r_list)
            if min(r_list) * 2 >= config.num_patches or r > 2 * config.num_patches:
                break
            r += 1
        fit = fit_merge_schedule(config, self.p_ratio, candidates=candidates, match_dim=head_dim, method="tome")
        self._r_list = fit.r_list
        self._fit = {"r": candidates.index(fit.r_list), "r_list": fit.r_list, "tokens": fit.tokens,
                     "after": fit.after, "closed_form_gflops": fit.gflops, "target_gflops": fit.target_gflops}

    def describe(self) -> dict[str, Any]:
        return dict(self._fit)

    def after_attn(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        if self._r_list is None:
            raise TokbenchError("tome: setup(backbone) must run before the forward pass")
        r = self._r_list[layer]
        if r <= 0:
            return tokens
        return merge_tokens(tokens, attn.mean(dim=1), r)  # metric: keys averaged over heads
