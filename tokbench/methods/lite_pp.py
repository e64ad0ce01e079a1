"""``lite++``: LITE with a per-clip token budget set by a cheap difficulty model.

Hao et al., "Principles of Visual Tokens for Efficient Video Understanding" (ICCV 2025,
arXiv 2411.13626) §4.3. A lightweight classifier (MoViNet in the
paper; here :class:`DifficultyModel`, a two-block ViT trained by ``tokbench train lite++``)
gives each clip a confidence c. With tau1 = 0.1 and tau2 = 0.5:

- c > tau2 (easy): the small budget, 30 % of the tokens when P is 0.5, 0.7 or 0.9 and 20 %
  when P = 0.3 (:func:`small_budget` extends this to any P as 0.3 for P >= 0.5, 2P/3 below);
- tau1 <= c <= tau2: the baseline budget P;
- c < tau1 (very hard): the paper "will not invest extra tokens". Read here as: such a clip
  gets the small budget too (if it got P, tau1 would change nothing). ``hard="baseline"``
  gives it P instead.

Confidence c is the maximum softmax probability (single label); for multi-label the largest
sigmoid probability, for verb + noun the product of the verb's and the noun's maxima (the
probability of the most likely action). The difficulty model's FLOPs are part of every
clip's count, and FLOPs are counted per clip (budgets differ between clips).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tokbench.backbones.vit import VideoViT
from tokbench.errors import TokbenchError
from tokbench.methods.base import keep_count
from tokbench.methods.lite import Lite
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips, Tokens
from tokbench.weights import load_weights, read_weights
from tokbench.zoo import zoo_artifact

__all__ = ["LitePlusPlus", "DifficultyModel", "difficulty_config", "small_budget", "confidence"]


def small_budget(p_ratio: float) -> float:
    """LITE++'s small budget at P: 0.3 for P >= 0.5 (the paper's P = 0.5, 0.7, 0.9), 2P/3
    below (the paper's 0.2 at P = 0.3), never more than P."""
    return min(p_ratio, 0.3 if p_ratio >= 0.5 - 1e-9 else 2 * p_ratio / 3)


def difficulty_config(config, num_classes: int):
    """The difficulty model's geometry for a backbone: the clip at half resolution, patches
    half as wide (the same spatial grid), 4-frame tubelets (half the time steps), a third of
    the width, two blocks, a CLS token. On the synthetic suite about 5 % of the backbone's FLOPs."""
    patch = max(config.patch_size // 2, 1)
    tubelet = 2 * config.tubelet_size if config.num_frames % (2 * config.tubelet_size) == 0 else config.tubelet_size
    width = max(32, (config.embed_dim // 3) // 16 * 16)
    return dataclasses.replace(
        config, img_size=config.img_size // 2, patch_size=patch, tubelet_size=tubelet, embed_dim=width, depth=2,
        num_heads=2, class_token=True, global_pool="token", num_classes=num_classes, drop_path_rate=0.0,
        attn_impl="sdpa", init_values=None,
    )


def confidence(logits: Tensor, task: str, num_verbs: int | None = None) -> Tensor:
    """(B, outputs) logits -> (B,) confidence in [0, 1] (see the module docstring)."""
    logits = logits.float()
    if task == "multilabel":
        return torch.sigmoid(logits).amax(-1)
    if task == "verb_noun":
        verb = logits[:, :num_verbs].softmax(-1).amax(-1)
        noun = logits[:, num_verbs:].softmax(-1).amax(-1)
        return verb * noun
    return logits.softmax(-1).amax(-1)


class DifficultyModel(nn.Module):
    """A small video classifier on the half-resolution clip: (B, C, T, H, W) -> logits.

    Args:
        config: the backbone's config (the difficulty model's is derived, :func:`difficulty_config`).
        num_classes: outputs (the dataset's head size). task/num_verbs: how logits become a confidence.
    """

    def __init__(self, config, num_classes: int, *, task: str = "single", num_verbs: int | None = None) -> None:
        super().__init__()
        if config.img_size % 2 or (config.img_size // 2) % max(config.patch_size // 2, 1):
            raise TokbenchError(f"lite++: the difficulty model needs an even clip size, got {config.img_size}")
        self.vit = VideoViT(difficulty_config(config, num_classes))
        self.task, self.num_verbs = task, num_verbs

    def forward(self, video: Tensor) -> Tensor:
        return self.vit(F.avg_pool3d(video, kernel_size=(1, 2, 2)))

    def confidence(self, video: Tensor) -> Tensor:
        return confidence(self(video), self.task, self.num_verbs)

    @classmethod
    def from_file(cls, path: str | Path, config) -> DifficultyModel:
        """A trained difficulty model (``tokbench train lite++``); its card gives task and classes."""
        state, card = read_weights(path, "LITE++ difficulty model", card_keys=("num_classes", "task"))
        model = cls(config, card["num_classes"], task=card["task"], num_verbs=card.get("num_verbs"))
        return load_weights(model, state, mismatch=f"{path} does not fit this backbone's difficulty model")


@register_method("lite++", aliases=("litepp",))
class LitePlusPlus(Lite):
    """LITE++: LITE whose per-clip budget is set by a difficulty model's confidence.

    Args:
        p_ratio: the baseline budget P.
        selector: LITE selector file or ``"zoo"``. difficulty: difficulty-model file or ``"zoo"``.
        tau1, tau2: confidence thresholds (paper: 0.1 and 0.5).
        hard: budget of clips with confidence below tau1: ``"small"`` or ``"baseline"``.
    """

    cost_depends_on_content = True
    cost_set_by_token_counts = True  # the difficulty model costs the same on every clip
    variable_length = "split"

    def __init__(self, *, p_ratio: float = 1.0, selector: str = "zoo", difficulty: str = "zoo",
                 tau1: float = 0.1, tau2: float = 0.5, hard: str = "small") -> None:
        super().__init__(p_ratio=p_ratio, selector=selector)
        if not isinstance(difficulty, str):
            raise TokbenchError(f"lite++: difficulty must be a file path or 'zoo', got {difficulty!r}")
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in (tau1, tau2)) \
                or not 0 <= tau1 <= tau2 <= 1:
            raise TokbenchError(f"lite++: need 0 <= tau1 <= tau2 <= 1, got tau1={tau1!r}, tau2={tau2!r}")
        if hard not in ("small", "baseline"):
            raise TokbenchError(f"lite++: hard must be 'small' or 'baseline', got {hard!r}")
        self.difficulty, self.tau1, self.tau2, self.hard = difficulty, float(tau1), float(tau2), hard
        self._difficulty_path: Path | None = None if difficulty == "zoo" else Path(difficulty)
        self._difficulty: DifficultyModel | None = None

    def bind(self, *, dataset: str | None, memo: dict | None = None) -> None:
        super().bind(dataset=dataset, memo=memo)
        if self.difficulty == "zoo":  # budgets depend on trained weights: no untrained stand-in
            self._difficulty_path = zoo_artifact("lite++", dataset)

    def setup(self, backbone) -> None:
        super().setup(backbone)
        if self._difficulty_path is None:
            raise TokbenchError("lite++(difficulty='zoo') needs a synthetic dataset; pass difficulty=PATH")
        device = next(backbone.parameters()).device
        self._difficulty = DifficultyModel.from_file(self._difficulty_path, backbone.config).to(device)

    def networks(self) -> list:
        # The difficulty model is traced with the backbone only as parameters: its output
        # becomes Python numbers (the budgets), so the trace drops its ops; it is counted as
        # a decision network instead.
        return super().networks() + self.decision_networks()

    def decision_networks(self) -> list:
        return [] if self._difficulty is None else [self._difficulty]

    def extra_params(self) -> int:
        extra = 0 if self._difficulty is None else sum(p.numel() for p in self._difficulty.parameters())
        return super().extra_params() + extra

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "difficulty": None if self._difficulty_path is None else str(self._difficulty_path),
                "small_budget": small_budget(self.p_ratio)}

    def budgets(self, conf: Tensor) -> Tensor:
        """(B,) confidences -> (B,) fraction of tokens each clip keeps."""
        small = small_budget(self.p_ratio)
        low = small if self.hard == "small" else self.p_ratio
        ratio = torch.full_like(conf, self.p_ratio, dtype=torch.float64)
        ratio = torch.where(conf > self.tau2, small, ratio)
        return torch.where(conf < self.tau1, low, ratio)

    def after_embed(self, tokens: Tokens, clips: Clips) -> Tokens:
        n = tokens.n_patches
        scores = self.scores(clips, tokens, n)  # (B, N)
        net_dtype = next(self._difficulty.parameters()).dtype
        ratios = self.budgets(self._difficulty.confidence(clips.video.to(net_dtype)))
        counts = torch.tensor([keep_count(n, r) for r in ratios.tolist()], device=scores.device)
        k_max = int(counts.max())
        order = scores.topk(k_max, dim=1).indices  # best first
        valid = torch.arange(k_max, device=scores.device)[None, :] < counts[:, None]
        # Kept tokens in (t, h, w) order, padding (a position past the end) sorted last.
        positions, _ = torch.where(valid, order, n).sort(dim=1)
        mask = positions < n
        kept = tokens.keep(positions.clamp_max(n - 1))
        if bool(mask.all()):
            return kept
        p = tokens.n_prefix
        return kept.replace(mask=torch.cat([mask.new_ones(mask.shape[0], p), mask], dim=1))
