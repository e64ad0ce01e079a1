"""``oracle`` and ``lite``: LITE's Grad-CAM token oracle and its learned selector.

Hao et al., "Principles of Visual Tokens for Efficient Video Understanding" (ICCV 2025,
arXiv 2411.13626), §3.2-3.3, Eqs. (1)-(3). No official code.

- ``oracle`` (privileged: it reads the true label). Eq. (1)-(2): with all tokens, y^c is
  the pre-softmax score of the true class; A the hidden (GELU) activations of a block's MLP;
  w_d = mean over tokens of dy^c/dA_d; value = ReLU(sum_d w_d A_d), min-max normalised per
  clip; keep the top K. For several true classes (multi-label; verb + noun) y^c is the sum
  of their scores.
- ``lite``: a three-layer MLP with a sigmoid on each patch embedding (patch projection +
  position embedding, the frozen backbone's), trained with BCE against the oracle's values
  (tokbench train lite); it sits between the embedding and block 1; top K at inference.

Choices the paper leaves open (tokbench's reading):
- "the last blocks": the last block whose MLP output reaches the logits. With mean pooling
  that is the last block; with CLS pooling (the zoo's ``synth_tiny``) the patch tokens'
  last-block MLP never reaches the CLS token (its gradient is exactly zero), so the oracle
  uses the block before it. Option ``block``.
- Selector widths D -> D/2 -> D/4 -> 1 with ReLU: on ViT-B that is 0.58 GFLOPs, which
  reproduces LITE's 159/118/80/46 GFLOPs at P = 0.9/0.7/0.5/0.3 (its Tables 1-2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tokbench.errors import CheckpointError, TokbenchError
from tokbench.methods.base import IDENTITY, SelectionMethod
from tokbench.methods.random_drop import per_clip_uniform
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips, Tokens
from tokbench.weights import read_weights
from tokbench.zoo import zoo_artifact

__all__ = ["Oracle", "Lite", "LiteSelector", "oracle_values", "oracle_block"]


def oracle_block(config) -> int:
    """The block whose MLP activations the oracle differentiates (see module docstring)."""
    return config.depth - 1 if config.global_pool == "avg" else max(config.depth - 2, 0)


def oracle_values(model, video: Tensor, weights: Tensor, *, block: int | None = None) -> Tensor:
    """LITE's oracle (Eqs. 1-2) for every patch token: (B, C, T, H, W) -> (B, N) in [0, 1].

    Args:
        model: a :class:`~tokbench.backbones.VideoViT` (eval mode).
        weights: (B, num_outputs) true-class weights (:func:`tokbench.data.labels.target_weights`).
        block: block whose MLP hidden activations are A (default :func:`oracle_block`).
    """
    block = oracle_block(model.config) if block is None else block
    with torch.inference_mode(False):
        video, weights = video.clone(), weights.clone().to(video.device, torch.float32)
        with torch.no_grad():  # up to A, nothing needs a gradient
            tokens = model.encode(video, blocks=block)
            x, hidden = model.mlp_hidden(block, tokens)  # A: (B, N, hidden)
    with torch.inference_mode(False), torch.enable_grad():
        hidden = hidden.clone().requires_grad_(True)
        tokens = tokens.replace(x=model.mlp_rest(block, x, hidden))
        for layer in range(block + 1, len(model.blocks)):
            tokens = model.block_forward(layer, tokens, IDENTITY)
        logits = model.head(model.pool(tokens)).float()
        score = (logits * weights).sum()
        (grad,) = torch.autograd.grad(score, hidden)
    p = model.config.n_prefix
    a, g = hidden.detach()[:, p:].float(), grad[:, p:].float()
    w = g.mean(dim=1, keepdim=True)  # (B, 1, hidden): gradient averaged over the patch tokens
    v = torch.relu((a * w).sum(-1))  # (B, N)
    lo, hi = v.amin(dim=1, keepdim=True), v.amax(dim=1, keepdim=True)
    return (v - lo) / (hi - lo).clamp_min(1e-12)


@register_method("oracle")
class Oracle(SelectionMethod):
    """LITE's Grad-CAM oracle: keep the tokens with the highest value for the true class.

    Privileged (reads labels); FLOPs count the reduced forward pass only (the oracle's own
    forward and backward pass with all tokens is the price of knowing the label). Not timed.

    Args:
        p_ratio: fraction of patch tokens kept.
        block: the block whose MLP activations are differentiated (default: see module).
    """

    privileged = True

    def __init__(self, *, p_ratio: float = 1.0, block: int | None = None) -> None:
        super().__init__(p_ratio=p_ratio)
        if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 0):
            raise TokbenchError(f"oracle: block must be a non-negative integer or None, got {block!r}")
        self.block = block
        self._model = None
        self._memo: dict | None = None

    def bind(self, *, dataset: str | None, memo: dict | None = None) -> None:
        self._memo = memo

    def validate(self, config) -> None:
        if self.block is not None and self.block >= config.depth:
            raise TokbenchError(f"oracle: block {self.block} does not exist in a {config.depth}-block backbone; "
                                f"give block in 0..{config.depth - 1} or None")

    def setup(self, backbone) -> None:
        self.validate(backbone.config)
        self._model = backbone

    def describe(self) -> dict[str, Any]:
        if self._model is None:
            return {}
        return {"block": oracle_block(self._model.config) if self.block is None else self.block, "activations": "mlp hidden"}

    def _values(self, clips: Clips) -> Tensor:
        """Oracle values of the batch; with the runner's memo, each clip's are computed once
        per (dataset, model) and reused at every P (they do not depend on P)."""
        if self._memo is None:
            return oracle_values(self._model, clips.video, clips.labels, block=self.block)
        keys = [("oracle", self.block, int(i)) for i in clips.ids.tolist()]
        missing = [j for j, k in enumerate(keys) if k not in self._memo]
        if missing:
            idx = torch.tensor(missing, device=clips.video.device)
            fresh = oracle_values(self._model, clips.video[idx], clips.labels[idx], block=self.block)
            for j, row in zip(missing, fresh):
                self._memo[keys[j]] = row
        return torch.stack([self._memo[k] for k in keys])

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        if clips.video.is_meta:  # FLOP counting traces the reduced pass only
            return clips.video.new_zeros(clips.video.shape[0], num_patches)
        if clips.labels is None:
            raise TokbenchError("oracle is privileged: it needs the true labels (evaluate passes them)")
        values = self._values(clips)
        # ReLU leaves many tokens at exactly 0; ties are broken at random (seeded per clip),
        # not by position, which would keep whole frames.
        return values + 1e-6 * per_clip_uniform(clips.ids, num_patches, seed=0, device=values.device)


class LiteSelector(nn.Module):
    """LITE's selector: a per-token three-layer MLP, (B, N, D) -> (B, N) logits."""

    def __init__(self, dim: int, hidden: tuple[int, int] | None = None) -> None:
        super().__init__()
        h1, h2 = hidden or (max(dim // 2, 1), max(dim // 4, 1))
        self.mlp = nn.Sequential(nn.Linear(dim, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x).squeeze(-1)

    @classmethod
    def from_file(cls, path: str | Path, dim: int) -> LiteSelector:
        state, _ = read_weights(path, "LITE selector")
        w0 = state.get("mlp.0.weight")
        if w0 is None or w0.shape[1] != dim:
            got = None if w0 is None else tuple(w0.shape)
            raise CheckpointError(f"{path} is not a LITE selector for width {dim} (mlp.0.weight {got})")
        selector = cls(dim, (state["mlp.0.weight"].shape[0], state["mlp.2.weight"].shape[0]))
        selector.load_state_dict({k: v.float() for k, v in state.items()})
        return selector.eval()


@register_method("lite")
class Lite(SelectionMethod):
    """LITE: keep the top-K tokens by a learned per-token selector on the patch embeddings.

    Args:
        p_ratio: fraction of patch tokens kept.
        selector: a selector file (``tokbench train lite``), or ``"zoo"``: the shipped selector
            of the synthetic dataset being evaluated.
    """

    def __init__(self, *, p_ratio: float = 1.0, selector: str = "zoo") -> None:
        super().__init__(p_ratio=p_ratio)
        if not isinstance(selector, str):
            raise TokbenchError(f"lite: selector must be a file path or 'zoo', got {selector!r}")
        self.selector = selector
        self._path: Path | None = None if selector == "zoo" else Path(selector)
        self._net: LiteSelector | None = None
        self._cost_only = False

    def bind(self, *, dataset: str | None, memo: dict | None = None) -> None:
        # A cost-only sweep (no dataset) gets an untrained selector: FLOPs and speed do not
        # depend on its weights, and there is no accuracy to spoil.
        self._cost_only = self.selector == "zoo" and dataset is None
        if self.selector == "zoo" and dataset is not None:
            self._path = zoo_artifact("lite", dataset)

    def setup(self, backbone) -> None:
        dim = backbone.config.embed_dim
        device = next(backbone.parameters()).device
        if device.type == "meta":  # FLOP counting: the selector's shape is all that matters
            self._net = LiteSelector(dim).to("meta")
            return
        if self._path is None and self._cost_only:
            self._net = LiteSelector(dim).to(device)
            return
        if self._path is None:
            raise TokbenchError("lite(selector='zoo') needs a synthetic dataset to pick the shipped selector; "
                                "pass selector=PATH")
        self._net = LiteSelector.from_file(self._path, dim).to(device)

    def networks(self) -> list:
        return [] if self._net is None else [self._net]

    def extra_params(self) -> int:
        return 0 if self._net is None else sum(p.numel() for p in self._net.parameters())

    def describe(self) -> dict[str, Any]:
        if self._cost_only:
            return {"selector": "untrained (cost-only sweep)"}
        return {"selector": None if self._path is None else str(self._path)}

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        x = tokens.x[:, tokens.n_prefix :]
        return torch.sigmoid(self._net(x.to(next(self._net.parameters()).dtype)))
