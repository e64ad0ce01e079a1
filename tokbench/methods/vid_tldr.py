"""``vid_tldr``: training-free token merging with saliency (Choi et al., "vid-TLDR:
Training Free Token merging for Light-weight Video Transformer", CVPR 2024).

Reference: mlvlab/vid-TLDR ``multi_modality/utils/vid_TLDR.py`` (get_objective_score,
vidTLDR, merging, merge_wavg) and ``multi_modality/models/backbones/vit/vit.py`` (@a25051d).

In a block that merges, between attention and MLP: the saliency of each token is the
sharpness (negative entropy) of its head-mean attention row, computed from the attention
*before* the proportional-attention bias; tokens below the mean saliency are background
and carry no mass into the token they merge with; matching is ToMe's bipartite matching on
the hidden states (not keys). Sizes feed proportional attention in later blocks; the final
pool is a plain mean (UMT's ``x.mean(1)``). Saliency needs attention probabilities, so the
merging blocks run the explicit attention kernel; the blocks after them keep the fused one.

P-Ratio mapping: the official schedules (mlvlab/vid-TLDR configs) are front-loaded r lists;
tokbench halves the tokens block by block until a target count is reached, choosing the
target whose closed-form cost is closest to F(P). The r list is in :meth:`describe`.

Deviation: when every token is equally salient the reference divides by zero (NaN);
tokbench then weights every token 1 (plain size-weighted averaging).
"""

from __future__ import annotations

from typing import Any, Literal

from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.methods.base import Method
from tokbench.methods.flop_matching import fit_merge_schedule, front_loaded_r_list, merge_schedule, model_flops
from tokbench.methods.merging import attention_saliency
from tokbench.methods.registry import register_method
from tokbench.methods.tome import merge_tokens
from tokbench.tokens import Tokens

__all__ = ["VidTLDR", "unbiased_probs"]


def unbiased_probs(probs: Tensor, size: Tensor | None) -> Tensor:
    """Attention probabilities without proportional attention's log(size) bias.

    softmax(l + log s)_ij = softmax(l)_ij * s_j / Z_i, so dividing by s_j and renormalising
    each row recovers softmax(l) exactly: (B, heads, N, N), size (B, N, 1) or None.
    """
    if size is None:
        return probs
    p = probs / size[:, None, None, :, 0].to(probs.dtype)
    return p / p.sum(dim=-1, keepdim=True)


@register_method("vid_tldr", aliases=("vidtldr",))
class VidTLDR(Method):
    """vid-TLDR merging in the first blocks, FLOP-matched to P.

    Args:
        p_ratio: FLOP-matched keep ratio (ignored when ``r_list`` is given).
        r_list: merges per block instead of FLOP matching (missing blocks merge 0).
    """

    attn_needs = "probs"
    size_weighted_pool = False  # UMT pools with an unweighted mean

    def __init__(self, *, p_ratio: float = 1.0, r_list: tuple[int, ...] | list[int] | None = None) -> None:
        super().__init__(p_ratio=p_ratio)
        if r_list is not None:
            if not isinstance(r_list, (list, tuple)) or not all(
                isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in r_list
            ):
                raise TokbenchError(f"vid_tldr: r_list must be a list of non-negative integers, got {r_list!r}")
            r_list = tuple(r_list)
        self.r_list = r_list
        self._r: list[int] | None = None
        self._fit: dict[str, Any] = {}

    @property
    def proportional_attention(self) -> bool:
        return True  # later blocks attend with log(size), as UMT's vid-TLDR blocks do

    def validate(self, config) -> None:
        if config.n_prefix > 1:
            raise TokbenchError("vid_tldr supports at most one prefix (CLS) token")
        if self.r_list is not None:
            if len(self.r_list) > config.depth:
                raise TokbenchError(f"vid_tldr: r_list has {len(self.r_list)} entries for a {config.depth}-block "
                                    "backbone; give at most one per block")
            too_many = [r for r in self.r_list if r > config.num_patches]
            if too_many:  # merges are capped at half the tokens, but more than all of them means nothing
                raise TokbenchError(f"vid_tldr: r_list entry {too_many[0]} is more than the backbone's "
                                    f"{config.num_patches} patch tokens; give entries in 0..{config.num_patches}")

    def setup(self, backbone) -> None:
        config = backbone.config
        self.validate(config)
        n0, prefix, depth = config.num_patches + config.n_prefix, config.n_prefix, config.depth
        if self.r_list is not None:
            self._r = list(self.r_list) + [0] * (depth - len(self.r_list))
            before, after = merge_schedule(n0, prefix, self._r)
            gflops = model_flops(config, embedded=config.num_patches, tokens=before, after=after,
                                 match_dim=config.embed_dim) / 1e9
            self._fit = {"r_list": self._r, "tokens": before, "after": after, "closed_form_gflops": gflops}
            return
        candidates = [front_loaded_r_list(n0, prefix, target, depth) for target in range(n0, prefix, -1)]
        fit = fit_merge_schedule(config, self.p_ratio, candidates=candidates, match_dim=config.embed_dim,
                                 method="vid_tldr")
        self._r = fit.r_list
        self._fit = {"r_list": fit.r_list, "tokens": fit.tokens, "after": fit.after,
                     "closed_form_gflops": fit.gflops, "target_gflops": fit.target_gflops}

    def describe(self) -> dict[str, Any]:
        return dict(self._fit)

    def attention_needs(self, layer: int) -> Literal["keys", "probs"] | None:
        if self._r is None:
            raise TokbenchError("vid_tldr: setup(backbone) must run before the forward pass")
        return "probs" if self._r[layer] > 0 else None

    def after_attn(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        r = self._r[layer]
        if r <= 0:
            return tokens
        saliency = attention_saliency(unbiased_probs(attn, tokens.size))  # (B, N, 1)
        # vid-TLDR's merge always sorts the unmerged tokens back into position order.
        return merge_tokens(tokens, tokens.x, r, src_weight_fn=lambda: saliency[:, ::2], keep_order=True)
