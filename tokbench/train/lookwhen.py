"""``tokbench train lookwhen``: LookWhen's selection and extraction pre-training.

Salamatian, Fuller et al. (arXiv 2605.06809), with LookWhere's code (antofuller/lookwhere
``original_jax_tpu_pretraining/training.py``) as the template. Two stages, both against targets
computed once per clip with the teachers (which never run at inference):

1. **Selection.** Target: token uniqueness, the distance of each token's image-teacher
   feature to its nearest other token over all frames (:func:`~tokbench.methods.lookwhen.uniqueness`;
   ``k`` > 1 averages the k nearest, the paper's ablation). The selector starts from the
   video teacher's first blocks and regresses the per-clip z-scored uniqueness (MSE; the
   ranking is what matters, and z-scoring makes clips comparable).
2. **Extraction.** The extractor starts from the video teacher's weights and sees only the
   top-K tokens by the (frozen) trained selector, K drawn per batch with P uniform in
   ``keep_range``. Losses, weighted equally:
   - video teacher: MSE between the extractor's pooled feature and the teacher's pooled
     feature with all tokens (the same space, so the teacher's head classifies it);
   - frame-normalised image teacher. Reading (the paper leaves the exact normalisation
     open): each frame's patch and frame (CLS) features are standardised per channel with
     train-set statistics; patch and frame targets are then centred on the clip's time
     average (what changes within the video), and the video target is the time average of
     the standardised frame features. Patch targets are matched one-to-one on the kept
     tokens, frame targets by the mean of the kept tokens of each time step.

Best epochs are chosen by label-free validation losses (selector: MSE; extractor:
distillation loss at P = 0.3), so no label of the val split (the synthetic suite's
evaluation split) is used to pick weights.
"""

from __future__ import annotations

import copy
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tokbench.benchmark.environment import collect_environment
from tokbench.benchmark.evaluate import evaluate, slice_check
from tokbench.data import create_dataset
from tokbench.data.batching import collate_clips
from tokbench.errors import TokbenchError
from tokbench.methods import build_method, keep_count
from tokbench.methods.base import Method, top_k_indices
from tokbench.methods.lookwhen import DEFAULT_SELECTOR, LookWhenSelector, uniqueness
from tokbench.store import output_folder
from tokbench.tokens import Clips
from tokbench.train.image_teacher import ImageTeacher, load_image_teacher
from tokbench.train.loop import TrainConfig, fit
from tokbench.train.teacher import zoo_teacher
from tokbench.weights import read_weights, save_checkpoint
from tokbench.zoo import zoo_checkpoint

__all__ = ["train_lookwhen", "teacher_features", "distillation_targets", "GivenTokens", "Distiller",
           "align_to_tubelets", "topk_overlap"]


class GivenTokens(Method):
    """Embeds the tubelets at a given (B, K) index (the selection a training step drew)."""

    name = "given_tokens"

    def __init__(self, index: Tensor) -> None:
        super().__init__()
        self.index = index

    def before_embed(self, clips: Clips, num_patches: int) -> Tensor:
        return self.index


def align_to_tubelets(patch: Tensor, frame: Tensor, grid: tuple[int, int, int]) -> tuple[Tensor, Tensor]:
    """Per-frame image features -> one per tubelet of the video grid (T', H', W').

    Args:
        patch: (B, T, h, w, C); frame: (B, T, C), T a multiple of T'.
    Returns:
        patch (B, T'*H'*W', C) in the tokens' (t, h, w) order (frames of a tubelet averaged,
        resized bilinearly if (h, w) != (H', W')); frame (B, T', C).
    """
    B, T, h, w, C = patch.shape
    Tq, H, W = grid
    if T % Tq:
        raise TokbenchError(f"{T} teacher frames do not split into {Tq} tubelets")
    t = T // Tq
    patch = patch.reshape(B, Tq, t, h, w, C).mean(2)
    frame = frame.reshape(B, Tq, t, C).mean(2)
    if (h, w) != (H, W):
        x = patch.permute(0, 1, 4, 2, 3).reshape(B * Tq, C, h, w)
        x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        patch = x.reshape(B, Tq, C, H, W).permute(0, 1, 3, 4, 2)
    return patch.reshape(B, Tq * H * W, C), frame


@torch.no_grad()
def teacher_features(video_teacher, image_teacher: ImageTeacher, dataset, *, k: int = 1,
                     batch_size: int = 64) -> dict[str, Tensor]:
    """Everything the teachers say about each clip of ``dataset`` (first view):
    ``video`` (n, D) the video teacher's pooled feature; ``patch`` (n, N, C) and ``frame``
    (n, T', C) image features per tubelet; ``uniqueness`` (n, N)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_clips)
    grid = video_teacher.config.grid
    out: dict[str, list[Tensor]] = {"video": [], "patch": [], "frame": [], "uniqueness": []}
    for batch in loader:
        video = batch["video"]
        video = video[:, 0] if video.dim() == 6 else video
        out["video"].append(video_teacher.forward_features(video))
        patch, frame = align_to_tubelets(*image_teacher.features(video), grid)
        out["uniqueness"].append(uniqueness(patch, k=k))
        out["patch"].append(patch.half())
        out["frame"].append(frame)
    return {key: torch.cat(v) for key, v in out.items()}


def distillation_targets(feats: dict[str, Tensor], stats: dict[str, Tensor]) -> dict[str, Tensor]:
    """The extractor's targets from :func:`teacher_features` (see the module docstring)."""
    patch = (feats["patch"].float() - stats["patch_mean"]) / stats["patch_std"]  # (n, N, C)
    n, N, C = patch.shape
    Tq = feats["frame"].shape[1]
    patch = patch.reshape(n, Tq, N // Tq, C)
    patch = (patch - patch.mean(1, keepdim=True)).reshape(n, N, C)
    frame = (feats["frame"] - stats["frame_mean"]) / stats["frame_std"]  # (n, T', C)
    return {"video_teacher": feats["video"], "patch_target": patch.half(), "frame_target": frame - frame.mean(1, keepdim=True),
            "video_image": frame.mean(1)}


def _stats(feats: dict[str, Tensor]) -> dict[str, Tensor]:
    patch = feats["patch"].float().flatten(0, 1)
    frame = feats["frame"].flatten(0, 1)
    return {"patch_mean": patch.mean(0), "patch_std": patch.std(0).clamp_min(1e-4),
            "frame_mean": frame.mean(0), "frame_std": frame.std(0).clamp_min(1e-4),
            "video_var": feats["video"].var(0).mean()}


class _WithTargets(torch.utils.data.Dataset):
    """A clip dataset whose items also carry per-clip target tensors."""

    def __init__(self, clips, targets: dict[str, Tensor]) -> None:
        self.clips, self.targets = clips, targets
        self.card = clips.card

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.clips[i], **{k: v[i] for k, v in self.targets.items()}}


def _zscore(u: Tensor) -> Tensor:
    return (u - u.mean(-1, keepdim=True)) / u.std(-1, keepdim=True).clamp_min(1e-6)


def topk_overlap(scores: Tensor, target: Tensor, p_ratio: float) -> float:
    """Mean fraction of the target's top-K tokens that ``scores`` also put in its top K."""
    k = keep_count(scores.shape[1], p_ratio)
    a = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, scores.topk(k, dim=1).indices, True)
    b = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, target.topk(k, dim=1).indices, True)
    return float((a & b).sum(1).float().mean() / k)


@torch.no_grad()
def _selector_scores(selector: nn.Module, dataset, batch_size: int = 128) -> Tensor:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_clips)
    return torch.cat([selector(b["video"]) for b in loader])


class Distiller(nn.Module):
    """The extractor plus the heads that predict the image teacher's targets (training only).

    ``forward(video, index)`` -> dict: ``pooled`` (B, D) the extractor's feature (the teacher
    head's input), ``video_image`` (B, C), ``patch`` (B, K, C), ``frame`` (B, T', C) and
    ``frame_seen`` (B, T') whether any kept token is at that time step.
    """

    def __init__(self, extractor: nn.Module, image_dim: int) -> None:
        super().__init__()
        D = extractor.config.embed_dim
        self.extractor = extractor
        self.patch_head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, image_dim))
        self.frame_head = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, image_dim))
        self.video_head = nn.Linear(D, image_dim)

    def forward(self, video: Tensor, index: Tensor) -> dict[str, Tensor]:
        ext = self.extractor
        tokens = ext.encode(video, GivenTokens(index))  # GivenTokens only picks the tubelets: identity in the blocks
        pooled = ext.pool(tokens)
        x = tokens.x[:, tokens.n_prefix :]  # (B, K, D)
        Tq, H, W = ext.config.grid
        at = F.one_hot(tokens.index // (H * W), Tq).to(x.dtype)  # (B, K, T')
        seen = at.sum(1)
        frame = torch.einsum("bkt,bkd->btd", at, x) / seen.clamp_min(1)[..., None]
        return {"pooled": pooled, "video_image": self.video_head(pooled), "patch": self.patch_head(x),
                "frame": self.frame_head(frame), "frame_seen": seen > 0, "index": index}


def distillation_loss(out: dict[str, Tensor], batch: dict[str, Tensor], video_var: float) -> Tensor:
    """Sum of the four distillation terms (each a mean squared error; the video teacher's
    scaled by its feature variance so that all four start near 1)."""
    video = F.mse_loss(out["pooled"], batch["video_teacher"]) / video_var
    video_image = F.mse_loss(out["video_image"], batch["video_image"])
    target = batch["patch_target"].float().gather(1, out["index"][..., None].expand(-1, -1, out["patch"].shape[-1]))
    patch = F.mse_loss(out["patch"], target)
    seen = out["frame_seen"][..., None].to(out["frame"].dtype)
    frame = ((out["frame"] - batch["frame_target"]) ** 2 * seen).sum() / (seen.sum() * out["frame"].shape[-1]).clamp_min(1)
    return video + video_image + patch + frame


def train_lookwhen(dataset: str, *, out_dir: str | Path, image_teacher: str = "zoo", k: int = 1,
                   selector_config: TrainConfig | None = None, extractor_config: TrainConfig | None = None,
                   keep_range: tuple[float, float] = (0.1, 0.9), selector_depth: int | None = None,
                   stages: tuple[str, ...] = ("selector", "extractor"), command: str | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Selection and extraction pre-training for the zoo backbone of ``dataset``.

    Writes ``<dataset>.selector.safetensors`` and ``<dataset>.extractor.safetensors`` (with
    cards) to ``out_dir``. Returns both cards.
    """
    if not 0 < keep_range[0] <= keep_range[1] <= 1:
        raise TokbenchError(f"keep range must be within (0, 1], got {keep_range}")
    selector_config = selector_config or TrainConfig(epochs=8, batch_size=32, lr=1e-3, token_drop=0.0, warmup_epochs=0.5)
    extractor_config = extractor_config or TrainConfig(epochs=8, batch_size=32, lr=3e-4, token_drop=0.0,
                                                       warmup_epochs=0.5)
    out_dir = output_folder(out_dir, "--out-dir", make=False)  # fail now, not after training
    torch.manual_seed(selector_config.seed)
    card_b, teacher, geometry = zoo_teacher(dataset, trainer="lookwhen")
    # Bad inputs fail before the clips and teacher features are made (creating the clips draws no torch random
    # numbers, so reading the image teacher first leaves the seeded stream as it was).
    images = load_image_teacher(image_teacher, dataset=dataset)
    paths = {s: out_dir / f"{dataset}.{s}.safetensors" for s in ("selector", "extractor")}
    if "selector" not in stages:
        if not paths["selector"].exists():
            raise TokbenchError(f"no selector at {paths['selector']}: run the selector stage first")
        read_weights(paths["selector"], "LookWhen selector", card_keys=("selector",))
    splits = {s: create_dataset(dataset, split=s, **geometry) for s in ("train", "val")}
    command = command or shlex.join(["tokbench", *sys.argv[1:]])
    t0 = time.perf_counter()
    feats = {s: teacher_features(teacher, images, d, k=k) for s, d in splits.items()}
    target_seconds = round(time.perf_counter() - t0, 1)
    common = {"dataset": dataset, "backbone": card_b["backbone"], "video_teacher": zoo_checkpoint(dataset).name,
              "image_teacher": image_teacher, "uniqueness_k": k, "command": command,
              "data": {**geometry, "train_clips": len(splits["train"]), "val_clips": len(splits["val"]), "seed": 0},
              "teacher_seconds": target_seconds}
    cards: dict[str, Any] = {}
    depth = selector_depth or max(1, round(teacher.config.depth * DEFAULT_SELECTOR["depth_fraction"]))
    shape = {"depth": depth, "scale": DEFAULT_SELECTOR["scale"], "head_ratio": DEFAULT_SELECTOR["head_ratio"]}

    if "selector" in stages:
        selector = LookWhenSelector(teacher.config, **shape)
        selector.init_from(teacher)
        data = {s: _WithTargets(d, {"uniq": _zscore(feats[s]["uniqueness"])}) for s, d in splits.items()}

        def validate(m) -> dict[str, float]:
            scores = _selector_scores(m, splits["val"])
            return {"neg_mse": -F.mse_loss(scores, data["val"].targets["uniq"]).item(),
                    "overlap_0.3": topk_overlap(scores, feats["val"]["uniqueness"], 0.3)}

        work = paths["selector"].with_name(paths["selector"].stem + ".fp32.safetensors")
        card = {"kind": "lookwhen_selector", **common, "selector": shape, "target": "z-scored uniqueness, MSE"}
        result = fit(selector, data["train"], validate=validate, metric="neg_mse", out=work, config=selector_config,
                     card=card, forward=lambda m, b, g: m(b["video"]),
                     loss=lambda s, b: F.mse_loss(s, b["uniq"]), progress=progress)
        best = LookWhenSelector.from_file(work, teacher.config)  # the best epoch (fit wrote it with its card)
        scores = _selector_scores(best, splits["val"])
        rand = torch.rand(scores.shape, generator=torch.Generator().manual_seed(0))
        card.update(train=asdict(selector_config), best_epoch=result.best_epoch, history=result.history,
                    train_seconds=round(result.seconds, 1),
                    val_overlap={str(p): {"selector": topk_overlap(scores, feats["val"]["uniqueness"], p),
                                          "random": topk_overlap(rand, feats["val"]["uniqueness"], p)}
                                 for p in (0.1, 0.3, 0.5)},
                    env=collect_environment(torch.device("cpu")))
        save_checkpoint(best, paths["selector"], card, dtype=torch.float16)
        cards["selector"] = card

    if "extractor" in stages:
        if not paths["selector"].exists():
            raise TokbenchError(f"no selector at {paths['selector']}: run the selector stage first")
        torch.manual_seed(extractor_config.seed)
        selector = LookWhenSelector.from_file(paths["selector"], teacher.config)
        stats = _stats(feats["train"])
        data = {}
        for s, d in splits.items():
            targets = distillation_targets(feats[s], stats)
            targets["scores"] = _selector_scores(selector, d)
            data[s] = _WithTargets(d, targets)
        extractor = copy.deepcopy(teacher).train()
        extractor.requires_grad_(True)
        extractor.head.requires_grad_(False)  # the teacher's head stays: it reads the distilled feature
        distiller = Distiller(extractor, feats["train"]["patch"].shape[-1])
        video_var = float(stats["video_var"])
        n = teacher.config.num_patches
        lo, hi = keep_range

        def forward(m, batch, gen) -> dict[str, Tensor]:
            p = lo + (hi - lo) * torch.rand((), generator=gen).item()
            return m(batch["video"], top_k_indices(batch["scores"], keep_count(n, p)))

        val_loader = torch.utils.data.DataLoader(data["val"], batch_size=128, collate_fn=collate_clips)

        @torch.no_grad()
        def validate(m) -> dict[str, float]:
            losses = [distillation_loss(m(b["video"], top_k_indices(b["scores"], keep_count(n, 0.3))), b, video_var).item()
                      for b in val_loader]
            return {"neg_distill_0.3": -sum(losses) / len(losses)}

        work = paths["extractor"].with_name(paths["extractor"].stem + ".fp32.safetensors")
        card = {"kind": "lookwhen_extractor", **common, "selector_file": paths["selector"].name,
                "keep_range": list(keep_range), "init": "video teacher weights; head frozen (reused at eval)",
                "losses": ["video teacher pooled feature (MSE / var)", "image video token", "image frame tokens",
                           "image patch tokens (kept, one-to-one)"],
                "image_normalisation": "per-channel standardised (train stats), patch/frame centred on the clip's time mean"}
        result = fit(distiller, data["train"], validate=validate, metric="neg_distill_0.3", out=work,
                     config=extractor_config, card=card, forward=forward,
                     loss=lambda o, b: distillation_loss(o, b, video_var), progress=progress)
        from safetensors.torch import load_file

        distiller.load_state_dict(load_file(str(work)))
        extractor = distiller.extractor.eval()
        save_checkpoint(extractor, paths["extractor"], card, dtype=torch.float16)
        # Accuracy on val of what ships: LookWhen, the selector with the teacher's weights, random drop.
        metric = card_b["metric"]
        accuracy: dict[str, dict[str, float]] = {}
        specs = {"lookwhen": f"lookwhen(selector={str(paths['selector'])!r}, extractor={str(paths['extractor'])!r})",
                 "selector+teacher": f"lookwhen(selector={str(paths['selector'])!r}, extractor='backbone')",
                 "random": "random"}
        for name, spec in specs.items():
            accuracy[name] = {}
            for p in (0.1, 0.3, 0.5):
                method = build_method(spec, p_ratio=p)
                method.setup(teacher)
                accuracy[name][str(p)] = evaluate(method.model(teacher), method, splits["val"], batch_size=64).metrics[metric]
        method = build_method(specs["lookwhen"], p_ratio=0.3)
        method.setup(teacher)
        card.update(train=asdict(extractor_config), best_epoch=result.best_epoch, history=result.history,
                    train_seconds=round(result.seconds, 1), metric=metric, val_accuracy=accuracy,
                    check={"p_ratio": 0.3, **slice_check(method.model(teacher), dataset, geometry=geometry, method=method)},
                    env=collect_environment(torch.device("cpu")))
        save_checkpoint(extractor, paths["extractor"], card, dtype=torch.float16)
        cards["extractor"] = card
    return cards
