"""``lookwhen``: a shallow selector on a scaled-down clip picks the tokens a deep extractor sees.

Salamatian, Fuller et al., "LookWhen? Fast Video Recognition by Learning When, Where, and
What to Compute" (arXiv 2605.06809). No official code; the image predecessor LookWhere (arXiv 2505.18051,
antofuller/lookwhere ``modeling.py``) is the template for what the text leaves open.

- **Selector** (:class:`LookWhenSelector`): a shallow ViT (the first blocks of the video
  teacher) on the clip downscaled by an integer ``scale`` in space, with the same patch
  size, so each low-resolution token covers scale x scale full-resolution tokens. A
  per-token MLP head gives those scale^2 scores (LookWhere's r^2 head; LookWhere resizes
  the tiled map bilinearly because 518/14 is not a multiple of 154/14, which cannot happen
  here). Output: one score for every space-time token of the full clip, (B, N). Trained to predict token
  uniqueness (:func:`uniqueness`), ``tokbench train lookwhen``.
- **Extractor**: a deep ViT of the backbone's architecture, started from the video
  teacher's weights and distilled on the top-K tokens; only the K selected tubelets are
  embedded (K = keep_count(N, P); LookWhen's sparsity is 1 - P). It reuses the teacher's
  head, since its pooled feature is distilled to the teacher's (protocol ``eval``).

FLOPs = selector + extractor on K tokens, both traced by fvcore (the selector through
:meth:`Method.networks`). The teachers run only in training.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tokbench.backbones.vit import VideoViT
from tokbench.errors import TokbenchError
from tokbench.methods.base import SelectionMethod
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips
from tokbench.weights import load_weights, read_card, read_weights
from tokbench.zoo import zoo_artifact

__all__ = ["LookWhen", "LookWhenSelector", "uniqueness", "selector_config", "DEFAULT_SELECTOR"]

#: Selector shape when no trained file says otherwise: a quarter of the teacher's blocks
#: (LookWhere: 3 of DINOv2-B's 12) on a clip downscaled 2x in space, head MLP D -> 4D -> r^2.
DEFAULT_SELECTOR = {"depth_fraction": 0.25, "scale": 2, "head_ratio": 4}


def uniqueness(features: Tensor, *, k: int = 1) -> Tensor:
    """LookWhen's selection target: each token's distance to its nearest neighbours.

    Args:
        features: (B, N, C) image-teacher features of every token of a clip (all frames:
            neighbours are searched across space and time).
        k: neighbours averaged (the paper's ablation: k = 1, the nearest, is best on average).

    Returns:
        (B, N): mean Euclidean distance of each l2-normalised feature to its ``k`` nearest
        other features of the same clip (the token itself excluded).
    """
    if not 1 <= k < features.shape[1]:
        raise TokbenchError(f"uniqueness: k must be in [1, {features.shape[1] - 1}], got {k}")
    f = F.normalize(features.float(), dim=-1)
    d = torch.cdist(f, f)  # (B, N, N)
    d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return d.topk(k, dim=-1, largest=False).values.mean(-1)


def selector_config(config, *, depth: int, scale: int):
    """The selector ViT's geometry: the backbone's, ``scale`` x smaller in space, ``depth`` blocks,
    no classifier."""
    side = config.img_size // scale
    if config.img_size % scale or side % config.patch_size:
        raise TokbenchError(f"lookwhen: a {config.img_size}px clip downscaled by {scale} is not a multiple of "
                            f"the {config.patch_size}px patch; choose another selector scale")
    if not 1 <= depth <= config.depth:
        raise TokbenchError(f"lookwhen: selector depth must be in [1, {config.depth}], got {depth}")
    return dataclasses.replace(config, img_size=side, depth=depth, num_classes=0, drop_path_rate=0.0)


class LookWhenSelector(nn.Module):
    """Shallow ViT on the downscaled clip -> a score for every full-resolution token.

    Args:
        config: the backbone's (extractor's) :class:`~tokbench.backbones.VideoViTConfig`.
        depth: selector blocks. scale: spatial downscaling of the input (an integer).
        head_ratio: hidden width of the per-token head, in multiples of the embedding width.
    """

    def __init__(self, config, *, depth: int, scale: int = 2, head_ratio: int = 4) -> None:
        super().__init__()
        self.scale, self.depth, self.head_ratio = scale, depth, head_ratio
        self.vit = VideoViT(selector_config(config, depth=depth, scale=scale))
        self.r = scale  # full-resolution tokens per low-resolution token along each side
        D = config.embed_dim
        self.norm = nn.LayerNorm(D, eps=config.norm_eps)
        self.head = nn.Sequential(nn.Linear(D, head_ratio * D), nn.GELU(), nn.Linear(head_ratio * D, self.r ** 2))

    def init_from(self, teacher: nn.Module) -> None:
        """Start from the teacher's patch embedding, CLS token and first ``depth`` blocks
        (as LookWhere starts from DINOv2's first blocks)."""
        own = self.vit.state_dict()
        state = {k: v for k, v in teacher.state_dict().items() if k in own and own[k].shape == v.shape}
        self.vit.load_state_dict(state, strict=False)

    def forward(self, video: Tensor) -> Tensor:
        """(B, C, T, H, W) full-resolution normalised clip -> (B, N) scores of the full grid."""
        B = video.shape[0]
        small = F.avg_pool3d(video, kernel_size=(1, self.scale, self.scale)) if self.scale > 1 else video
        tokens = self.vit.encode(small, blocks=self.depth)
        x = self.head(self.norm(tokens.x[:, tokens.n_prefix :]))  # (B, T'*h*w, r*r)
        T, h, w = self.vit.config.grid
        r = self.r
        # Token (t, i, j)'s score q = a * r + b goes to full-resolution position (t, i * r + a, j * r + b).
        return x.reshape(B, T, h, w, r, r).permute(0, 1, 2, 4, 3, 5).reshape(B, T * h * r * w * r)

    @classmethod
    def from_file(cls, path: str | Path, config) -> LookWhenSelector:
        """A trained selector (``tokbench train lookwhen``); its card gives depth and scale."""
        state, card = read_weights(path, "LookWhen selector", card_keys=("selector",))
        shape = card["selector"]
        selector = cls(config, depth=shape["depth"], scale=shape["scale"], head_ratio=shape["head_ratio"])
        return load_weights(selector, state, mismatch=f"{path} does not fit a {config.embed_dim}-wide selector")


@register_method("lookwhen")
class LookWhen(SelectionMethod):
    """LookWhen: a shallow selector on a downscaled clip picks the top-K tokens for a distilled extractor.

    Args:
        p_ratio: fraction of tokens the extractor sees (sparsity = 1 - p_ratio).
        selector: a selector file (``tokbench train lookwhen``), or ``"zoo"``: the shipped one
            of the synthetic dataset being evaluated.
        extractor: an extractor file, ``"zoo"``, or ``"backbone"``: the backbone's own weights on
            the selected tokens (the selector alone, without extraction pre-training).
    """

    scores_need_tokens = False  # the selector reads the clip: only the K kept tubelets are embedded

    def __init__(self, *, p_ratio: float = 1.0, selector: str = "zoo", extractor: str = "zoo") -> None:
        super().__init__(p_ratio=p_ratio)
        for name, value in (("selector", selector), ("extractor", extractor)):
            if not isinstance(value, str):
                raise TokbenchError(f"lookwhen: {name} must be a file path or 'zoo' (extractor also 'backbone'), "
                                    f"got {value!r}")
        self.selector, self.extractor = selector, extractor
        self._paths: dict[str, Path | None] = {
            "selector": None if selector == "zoo" else Path(selector),
            "extractor": None if extractor in ("zoo", "backbone") else Path(extractor),
        }
        self._net: LookWhenSelector | None = None
        self._model = None
        self._cost_only = False

    def bind(self, *, dataset: str | None, memo: dict | None = None) -> None:
        # A cost-only sweep (no dataset) runs an untrained selector of the default shape in
        # front of the backbone: FLOPs and speed do not depend on weights, nothing is scored.
        self._cost_only = dataset is None and "zoo" in (self.selector, self.extractor)
        if self._cost_only:
            return
        for part in ("selector", "extractor"):
            if getattr(self, part) == "zoo":
                self._paths[part] = zoo_artifact("lookwhen", dataset, suffix=part)

    def setup(self, backbone) -> None:
        config = backbone.config
        device = next(backbone.parameters()).device
        if device.type == "meta" or self._cost_only:  # shapes only; the extractor is the backbone's architecture
            shape = _selector_shape(self._paths["selector"], config)
            self._net = LookWhenSelector(config, **shape).to(device)
            self._model = backbone
            return
        if self._paths["selector"] is None:
            raise TokbenchError("lookwhen(selector='zoo') needs a synthetic dataset to pick the shipped selector; "
                                "pass selector=PATH")
        self._net = LookWhenSelector.from_file(self._paths["selector"], config).to(device)
        self._model = backbone
        if self.extractor != "backbone":
            if self._paths["extractor"] is None:
                raise TokbenchError("lookwhen(extractor='zoo') needs a synthetic dataset; pass extractor=PATH")
            self._model = load_extractor(self._paths["extractor"], backbone)

    def model(self, backbone):
        return backbone if self._model is None else self._model

    def networks(self) -> list:
        return [] if self._net is None else [self._net]

    def extra_params(self) -> int:
        return 0 if self._net is None else sum(p.numel() for p in self._net.parameters())

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: None if v is None else str(v) for k, v in self._paths.items()}
        if self.extractor == "backbone":
            out["extractor"] = "backbone"
        if self._cost_only:
            out.update(selector="untrained (cost-only sweep)", extractor="backbone")
        if self._net is not None:
            out.update(selector_depth=self._net.depth, selector_scale=self._net.scale)
        return out

    def scores(self, clips: Clips, tokens, num_patches: int) -> Tensor:
        return self._net(clips.video.to(next(self._net.parameters()).dtype))


def _selector_shape(path: Path | None, config) -> dict[str, int]:
    if path is not None:
        try:
            return dict(read_card(path)["selector"])
        except (OSError, ValueError, KeyError):
            pass  # counting without the card: the default shape
    return {"depth": max(1, round(config.depth * DEFAULT_SELECTOR["depth_fraction"])),
            "scale": DEFAULT_SELECTOR["scale"], "head_ratio": DEFAULT_SELECTOR["head_ratio"]}


def load_extractor(path: str | Path, backbone) -> nn.Module:
    """The distilled extractor: a copy of ``backbone`` (same architecture) with the weights in ``path``."""
    state, _ = read_weights(path, "LookWhen extractor")
    return load_weights(copy.deepcopy(backbone), state, dtype=next(backbone.parameters()).dtype,
                        mismatch=f"{path} is not an extractor for this backbone")
