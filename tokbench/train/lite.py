"""``tokbench train lite``: oracle targets and LITE's selector for a zoo backbone.

Hao et al. (arXiv 2411.13626) §3.3: the selector (a per-token three-layer MLP with a
sigmoid) learns the oracle's token values with binary cross-entropy, the backbone frozen.
Here: oracle values and patch embeddings of every training clip are computed once with the
shipped backbone, then the selector trains in the shared loop (:func:`tokbench.train.loop.fit`)
with validation BCE on the val split picking the best epoch. The card records val BCE and
val accuracy of ``lite`` against ``random`` and ``oracle`` at P = 0.3 and 0.5.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tokbench.benchmark.environment import collect_environment
from tokbench.benchmark.evaluate import evaluate
from tokbench.data import create_dataset
from tokbench.data.batching import collate_clips
from tokbench.data.labels import target_weights
from tokbench.methods import build_method
from tokbench.methods.lite import LiteSelector, oracle_block, oracle_values
from tokbench.store import output_file
from tokbench.train.loop import TrainConfig, fit
from tokbench.train.teacher import zoo_teacher
from tokbench.weights import save_checkpoint
from tokbench.zoo import zoo_checkpoint

__all__ = ["train_lite", "oracle_targets", "TokenTargets"]


class TokenTargets(torch.utils.data.Dataset):
    """Per-clip patch embeddings (N, D) as ``video`` and oracle values (N,) as ``label``."""

    def __init__(self, embeddings: Tensor, values: Tensor) -> None:
        self.embeddings, self.values = embeddings, values

    def __len__(self) -> int:
        return self.embeddings.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"id": str(i), "index": i, "video": self.embeddings[i], "label": self.values[i]}


@torch.no_grad()
def _embed(model, video: Tensor) -> Tensor:
    tokens = model.encode(video, blocks=0)
    return tokens.x[:, tokens.n_prefix :]


def oracle_targets(model, dataset, *, batch_size: int = 64, block: int | None = None) -> TokenTargets:
    """Patch embeddings and oracle values of every clip of ``dataset`` (one view)."""
    task = dataset.card.task
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_clips)
    embeddings, values = [], []
    for batch in loader:
        video = batch["video"]
        if video.dim() == 6:
            video = video[:, 0]
        weights = target_weights(task, batch["label"], model.config.num_classes,
                                 num_verbs=getattr(dataset, "num_verbs", None),
                                 verbs=batch.get("verb"), nouns=batch.get("noun"))
        values.append(oracle_values(model, video, weights, block=block))
        embeddings.append(_embed(model, video))
    return TokenTargets(torch.cat(embeddings), torch.cat(values))


def _bce(selector, data: TokenTargets) -> float:
    with torch.no_grad():
        return F.binary_cross_entropy_with_logits(selector(data.embeddings), data.values).item()


def train_lite(dataset: str, *, out: str | Path, config: TrainConfig | None = None,
               command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Train LITE's selector for the shipped zoo backbone of ``dataset``.

    Returns the card (also written beside ``out``).
    """
    output_file(out, suffix=".safetensors", make=False)  # fail now, not after training
    config = config or TrainConfig(epochs=10, batch_size=32, lr=1e-3, token_drop=0.0, warmup_epochs=0.5)
    torch.manual_seed(config.seed)
    card_b, model, geometry = zoo_teacher(dataset, trainer="lite")
    t0 = time.perf_counter()
    splits = {s: create_dataset(dataset, split=s, **geometry) for s in ("train", "val")}
    targets = {s: oracle_targets(model, d) for s, d in splits.items()}
    oracle_seconds = time.perf_counter() - t0
    selector = LiteSelector(model.config.embed_dim)
    out = Path(out)
    work = out.with_name(out.stem + ".fp32.safetensors")
    card: dict[str, Any] = {
        "kind": "lite_selector", "dataset": dataset, "backbone": card_b["backbone"],
        "backbone_weights": str(zoo_checkpoint(dataset).name), "selector_widths": [
            selector.mlp[0].out_features, selector.mlp[2].out_features],
        "command": command or shlex.join(["tokbench", *sys.argv[1:]]),
        "oracle": {"block": oracle_block(model.config), "activations": "mlp hidden",
                   "seconds": round(oracle_seconds, 1)},
        "data": {**geometry, "train_clips": len(splits["train"]), "val_clips": len(splits["val"]), "seed": 0},
    }
    result = fit(
        selector, targets["train"], validate=lambda m: {"neg_bce": -_bce(m, targets["val"])}, metric="neg_bce",
        out=work, config=config, card=card, forward=lambda m, batch, gen: m(batch["video"]),
        loss=lambda logits, batch: F.binary_cross_entropy_with_logits(logits, batch["label"]),
        progress=progress,
    )
    best = LiteSelector.from_file(work, model.config.embed_dim)
    card.update(train=asdict(config), best_epoch=result.best_epoch, history=result.history,
                train_seconds=round(oracle_seconds + result.seconds, 1), val_bce=_bce(best, targets["val"]),
                env=collect_environment(torch.device("cpu")))
    # Accuracy on val with the best selector (the work file holds its weights), against random and the oracle.
    metric = card_b["metric"]
    accuracy: dict[str, dict[str, float]] = {}
    for spec in ("lite", "random", "oracle"):
        accuracy[spec] = {}
        for p in (0.3, 0.5):
            method = build_method(f"lite(selector={str(work)!r})" if spec == "lite" else spec, p_ratio=p)
            method.setup(model)
            accuracy[spec][str(p)] = evaluate(model, method, splits["val"], batch_size=64).metrics[metric]
    card.update(metric=metric, val_accuracy=accuracy)
    save_checkpoint(best, out, card)
    return card
