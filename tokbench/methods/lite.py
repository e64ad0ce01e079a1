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
- Ties: ReLU leaves many tokens at exactly 0; they are broken at random (seeded per clip).
  Options ``ties``, ``variant`` and ``activations`` name the other readings, each its own
  cell; at their defaults they stay out of the cell id (``Method.identity_defaults``).

On the synthetic suite Eqs. (1)-(2) lose to random drop at P >= 0.3 whatever the block,
pooling, tie rule or activation tensor: averaging dy/dA over the tokens (Eq. 1) leaves
channel weights that say which features matter for the class, not where, and the sign of
sum_d w_d A_td is about as often positive on the tokens that hold the evidence as on the
background. A token's own gradient (``variant='grad_norm'`` or ``'gxa_abs'``, early
blocks) keeps the evidence 4-6x as often as random at P = 0.1 and beats random on every
dataset there. The README's synthetic-suite results give the measurements.
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

__all__ = ["Oracle", "Lite", "LiteSelector", "oracle_values", "oracle_gradients", "oracle_raw", "oracle_block",
           "VARIANTS", "TIES", "ACTIVATIONS"]


def oracle_block(config) -> int:
    """The block whose MLP activations the oracle differentiates (see module docstring)."""
    return config.depth - 1 if config.global_pool == "avg" else max(config.depth - 2, 0)


#: What the oracle differentiates (option ``activations``): the block's MLP hidden
#: activations after the GELU (``hidden``, the default: "the feature map activations of the
#: MLP"), the MLP's output before it is added to the residual stream (``mlp_out``), or the
#: block's output tokens (``block_out``, residual stream included).
ACTIVATIONS = ("hidden", "mlp_out", "block_out")
#: How a token's value is formed from A and dy/dA (option ``variant``). ``gradcam`` is
#: Eqs. (1)-(2); the others are readings the paper's text does not rule out (its §1 also
#: says "the value of each input token corresponds to its gradient").
VARIANTS = ("gradcam", "gradcam_abs", "gxa", "gxa_abs", "grad_norm")


def oracle_gradients(model, video: Tensor, weights: Tensor, *, block: int | None = None,
                     activations: str = "hidden") -> tuple[Tensor, Tensor]:
    """A and dy^c/dA of the patch tokens, (B, N, F) float32 each, with all tokens.

    Args:
        model: a :class:`~tokbench.backbones.VideoViT` (eval mode).
        weights: (B, num_outputs) true-class weights (:func:`tokbench.data.labels.target_weights`); y^c is
            ``(logits * weights).sum(-1)``.
        block: the block whose activations are A (default :func:`oracle_block`).
        activations: one of :data:`ACTIVATIONS`.
    """
    if activations not in ACTIVATIONS:
        raise TokbenchError(f"oracle: activations must be one of {', '.join(ACTIVATIONS)}, got {activations!r}")
    block = oracle_block(model.config) if block is None else block
    with torch.inference_mode(False):
        video, weights = video.clone(), weights.clone().to(video.device, torch.float32)
        with torch.no_grad():  # up to A, nothing needs a gradient
            tokens = model.encode(video, blocks=block)
            x, hidden = model.mlp_hidden(block, tokens)  # (B, N, hidden)
            if activations != "hidden":
                branch = model.mlp_rest(block, torch.zeros_like(x), hidden)  # the MLP's output alone
    with torch.inference_mode(False), torch.enable_grad():
        if activations == "hidden":
            a = hidden.clone().requires_grad_(True)
            x = model.mlp_rest(block, x, a)
        elif activations == "mlp_out":
            a = branch.clone().requires_grad_(True)
            x = x + a
        else:  # block_out
            a = (x + branch).requires_grad_(True)
            x = a
        tokens = tokens.replace(x=x)
        for layer in range(block + 1, len(model.blocks)):
            tokens = model.block_forward(layer, tokens, IDENTITY)
        logits = model.head(model.pool(tokens)).float()
        score = (logits * weights).sum()
        (grad,) = torch.autograd.grad(score, a)
    p = model.config.n_prefix
    return a.detach()[:, p:].float(), grad[:, p:].float()


def oracle_raw(a: Tensor, g: Tensor, variant: str = "gradcam") -> Tensor:
    """A token's signed value before the ReLU (or absolute value) of Eq. (2): (B, N).

    ``gradcam``/``gradcam_abs``: sum_d w_d A_td with w_d = mean over the patch tokens of
    dy/dA_td (Eq. 1); ``gxa``/``gxa_abs``: sum_d (dy/dA_td) A_td, each token's own gradient
    (gradient x activation, no averaging over tokens); ``grad_norm``: the L2 norm over d of
    the token's own gradient dy/dA_t (no activation; never negative)."""
    if variant not in VARIANTS:
        raise TokbenchError(f"oracle: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if variant == "grad_norm":
        return g.norm(dim=-1)
    if variant.startswith("gradcam"):
        return (a * g.mean(dim=1, keepdim=True)).sum(-1)  # w: gradient averaged over the patch tokens
    return (a * g).sum(-1)


def _min_max(v: Tensor) -> Tensor:
    lo, hi = v.amin(dim=1, keepdim=True), v.amax(dim=1, keepdim=True)
    return (v - lo) / (hi - lo).clamp_min(1e-12)


def oracle_values(model, video: Tensor, weights: Tensor, *, block: int | None = None, variant: str = "gradcam",
                  activations: str = "hidden") -> Tensor:
    """LITE's oracle (Eqs. 1-2) for every patch token: (B, C, T, H, W) -> (B, N) in [0, 1].

    With the defaults, value = ReLU(sum_d w_d A_d) min-max normalised per clip, A the MLP
    hidden activations of :func:`oracle_block` and w_d = mean over tokens of dy^c/dA_d.
    ``variant`` ``*_abs`` takes the absolute value instead of the ReLU; ``gxa*`` uses each
    token's own gradient (:func:`oracle_raw`).

    Args:
        model: a :class:`~tokbench.backbones.VideoViT` (eval mode).
        weights: (B, num_outputs) true-class weights (:func:`tokbench.data.labels.target_weights`).
        block: block whose activations are A (default :func:`oracle_block`).
        variant: one of :data:`VARIANTS`.
        activations: one of :data:`ACTIVATIONS`.
    """
    a, g = oracle_gradients(model, video, weights, block=block, activations=activations)
    return _normalised(oracle_raw(a, g, variant), variant)


def _normalised(raw: Tensor, variant: str) -> Tensor:
    """Eq. (2)'s ReLU (the absolute value for ``*_abs`` variants), then min-max per clip."""
    return _min_max(raw.abs() if variant.endswith("_abs") else torch.relu(raw))


#: How ties between equal values (ReLU leaves many tokens at exactly 0) are broken
#: (option ``ties``): at random, seeded per clip (the default); by position, the first
#: tokens in (t, h, w) order first (what a stable sort does); or by the signed value before
#: the ReLU/absolute value (:func:`oracle_raw`), then at random.
TIES = ("random", "position", "value")


@register_method("oracle")
class Oracle(SelectionMethod):
    """LITE's Grad-CAM oracle: keep the tokens with the highest value for the true class.

    Privileged (reads labels); FLOPs count the reduced forward pass only (the oracle's own
    forward and backward pass with all tokens is the price of knowing the label). Not timed.
    The defaults are Eqs. (1)-(2) of Hao et al. (arXiv 2411.13626); the other options are
    readings the paper leaves open, each its own cell (``oracle(ties='position')``).

    Args:
        p_ratio: fraction of patch tokens kept.
        block: the block whose MLP activations are differentiated (default: see module).
        variant: ``gradcam`` (Eqs. 1-2), ``gradcam_abs`` (absolute value instead of the
            ReLU), ``gxa`` / ``gxa_abs`` (each token's own gradient x activation, no average
            over tokens), ``grad_norm`` (the norm of each token's own gradient);
            :func:`oracle_raw`.
        ties: ``random``, ``position`` or ``value`` (:data:`TIES`).
        activations: ``hidden``, ``mlp_out`` or ``block_out`` (:data:`ACTIVATIONS`).
    """

    privileged = True
    #: Options added after records were stored: at these values they stay out of the cell
    #: id, so the cells of the paper's oracle keep their ids (results, baselines).
    identity_defaults = {"variant": "gradcam", "ties": "random", "activations": "hidden"}

    def __init__(self, *, p_ratio: float = 1.0, block: int | None = None, variant: str = "gradcam",
                 ties: str = "random", activations: str = "hidden") -> None:
        super().__init__(p_ratio=p_ratio)
        if block is not None and (isinstance(block, bool) or not isinstance(block, int) or block < 0):
            raise TokbenchError(f"oracle: block must be a non-negative integer or None, got {block!r}")
        for option, value, choices in (("variant", variant, VARIANTS), ("ties", ties, TIES),
                                       ("activations", activations, ACTIVATIONS)):
            if value not in choices:
                raise TokbenchError(f"oracle: {option} must be one of {', '.join(choices)}, got {value!r}")
        self.block, self.variant, self.ties, self.activations = block, variant, ties, activations
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
        block = oracle_block(self._model.config) if self.block is None else self.block
        return {"block": block, "activations": {"hidden": "mlp hidden"}.get(self.activations, self.activations),
                "variant": self.variant, "ties": self.ties}

    def _compute(self, clips_video: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """(values in [0, 1], signed values before the ReLU) of a batch."""
        a, g = oracle_gradients(self._model, clips_video, weights, block=self.block, activations=self.activations)
        raw = oracle_raw(a, g, self.variant)
        return _normalised(raw, self.variant), raw

    def _values(self, clips: Clips) -> tuple[Tensor, Tensor]:
        """Oracle values (and signed values) of the batch; with the runner's memo, each
        clip's are computed once per (dataset, model) and reused at every P (they do not
        depend on P)."""
        if self._memo is None:
            return self._compute(clips.video, clips.labels)
        keys = [("oracle", self.block, self.variant, self.activations, int(i)) for i in clips.ids.tolist()]
        missing = [j for j, k in enumerate(keys) if k not in self._memo]
        if missing:
            idx = torch.tensor(missing, device=clips.video.device)
            values, raw = self._compute(clips.video[idx], clips.labels[idx])
            for j, v, r in zip(missing, values, raw):
                self._memo[keys[j]] = (v, r)
        return torch.stack([self._memo[k][0] for k in keys]), torch.stack([self._memo[k][1] for k in keys])

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        if clips.video.is_meta:  # FLOP counting traces the reduced pass only
            return clips.video.new_zeros(clips.video.shape[0], num_patches)
        if clips.labels is None:
            raise TokbenchError("oracle is privileged: it needs the true labels (evaluate passes them)")
        values, raw = self._values(clips)

        if self.ties == "position":
            return _ranks(values)
        noise = per_clip_uniform(clips.ids, num_patches, seed=0, device=values.device)
        if self.ties == "value":
            return _ranks(values, raw, noise)
        # ReLU leaves many tokens at exactly 0; ties are broken at random (seeded per clip),
        # not by position, which would keep whole frames.
        return values + 1e-6 * noise


def _ranks(*keys: Tensor) -> Tensor:
    """(B, N) scores whose order is lexicographic in ``keys`` (higher first), the remaining
    ties by position (lower index first): N for the first token, 1 for the last."""
    order = torch.arange(keys[0].shape[1], device=keys[0].device).expand_as(keys[0])
    for key in reversed(keys):  # stable sorts, least significant key first
        order = order.gather(1, key.gather(1, order).sort(dim=1, descending=True, stable=True).indices)
    n = keys[0].shape[1]
    ranks = torch.arange(n, 0, -1, dtype=keys[0].dtype, device=keys[0].device).expand_as(keys[0])
    return torch.empty_like(keys[0]).scatter_(1, order, ranks)


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
