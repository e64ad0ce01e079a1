"""``tokbench train lite++``: LITE++'s difficulty model for a zoo dataset.

Hao et al. (arXiv 2411.13626) §4.3 use a MoViNet's confidence to choose each clip's token
budget. MoViNet is not available here (no hub, no pretrained weights); tokbench trains a
small stand-in of its own (:class:`~tokbench.methods.lite_pp.DifficultyModel`: two blocks at
half resolution) from scratch on the dataset's train split with the task loss, in the shared
loop, keeping the best epoch by the val metric. The card records its accuracy, how val
clips split over the confidence bands, and LITE vs LITE++ on val at P = 0.3 and 0.5.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from tokbench.benchmark.environment import collect_environment
from tokbench.benchmark.evaluate import evaluate, head_size
from tokbench.data import create_dataset
from tokbench.data.batching import collate_clips
from tokbench.methods import build_method
from tokbench.methods.lite_pp import DifficultyModel, difficulty_config
from tokbench.store import output_file
from tokbench.train.loop import TrainConfig, fit
from tokbench.train.teacher import zoo_teacher
from tokbench.weights import save_checkpoint
from tokbench.zoo import zoo_artifact

__all__ = ["train_difficulty", "confidences"]


@torch.no_grad()
def confidences(model: DifficultyModel, dataset, *, batch_size: int = 128) -> torch.Tensor:
    """(n,) confidence of the difficulty model on every clip of ``dataset`` (first view)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate_clips)
    out = []
    for batch in loader:
        video = batch["video"]
        out.append(model.confidence(video[:, 0] if video.dim() == 6 else video))
    return torch.cat(out)


class _Logits(torch.nn.Module):
    """Lets :func:`evaluate` score the difficulty model itself (it calls ``model(video, method)``)."""

    def __init__(self, model: DifficultyModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, video, method=None, **_):
        return self.model(video)


def train_difficulty(dataset: str, *, out: str | Path, config: TrainConfig | None = None,
                     command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train LITE++'s difficulty model for ``dataset`` (a zoo dataset). Returns the card."""
    output_file(out, suffix=".safetensors", make=False)  # fail now, not after training
    config = config or TrainConfig(epochs=12, batch_size=32, lr=2e-3, token_drop=0.0, warmup_epochs=1.0)
    torch.manual_seed(config.seed)
    card_b, backbone, geometry = zoo_teacher(dataset, trainer="lite++")
    splits = {s: create_dataset(dataset, split=s, **geometry) for s in ("train", "val")}
    task, num_verbs = splits["train"].card.task, getattr(splits["train"], "num_verbs", None)
    model = DifficultyModel(backbone.config, head_size(splits["train"]), task=task, num_verbs=num_verbs)
    metric = card_b["metric"]
    none = build_method("none")

    def validate(m) -> dict[str, float]:
        return evaluate(_Logits(m), none, splits["val"], batch_size=128).metrics

    out = Path(out)
    work = out.with_name(out.stem + ".fp32.safetensors")
    card: dict[str, Any] = {
        "kind": "lite++_difficulty", "dataset": dataset, "task": task, "num_verbs": num_verbs,
        "num_classes": head_size(splits["train"]), "config": difficulty_config(backbone.config, 0).to_dict(),
        "command": command or shlex.join(["tokbench", *sys.argv[1:]]),
        "data": {**geometry, "train_clips": len(splits["train"]), "val_clips": len(splits["val"]), "seed": 0},
        "stands_in_for": "MoViNet (not available offline); trained from scratch on the train split",
    }
    result = fit(model, splits["train"], validate=validate, metric=metric, out=work, config=config, card=card,
                 forward=lambda m, batch, gen: m(batch["video"]), progress=progress)
    best = DifficultyModel.from_file(work, backbone.config)  # the best epoch, read as users will read it
    conf = confidences(best, splits["val"])
    bands = {"below_tau1": float((conf < 0.1).float().mean()), "between": float(((conf >= 0.1) & (conf <= 0.5)).float().mean()),
             "above_tau2": float((conf > 0.5).float().mean())}
    card.update(train=asdict(config), best_epoch=result.best_epoch, history=result.history,
                train_seconds=round(result.seconds, 1), val=validate(best), val_confidence_bands=bands,
                env=collect_environment(torch.device("cpu")))
    save_checkpoint(best, out, card)  # LITE++ below reads the card
    shipped_selector = zoo_artifact("lite", dataset)
    accuracy: dict[str, dict[str, float]] = {}
    for spec in ("lite", f"lite++(difficulty={str(out)!r})"):
        name = spec.split("(")[0]
        accuracy[name] = {}
        for p in (0.3, 0.5):
            method = build_method(spec, p_ratio=p)
            method.bind(dataset=dataset)
            method.setup(backbone)
            accuracy[name][str(p)] = evaluate(backbone, method, splits["val"], batch_size=64).metrics[metric]
    card.update(metric=metric, lite_selector=shipped_selector.name, val_accuracy=accuracy)
    save_checkpoint(best, out, card)
    return card
