"""Evaluation protocols: how the weights that get evaluated are obtained.

* ``eval``: the backbone's own weights; the reduction is applied at inference only (the
  training-free view of LITE, ToMe, RLT).
* ``lp``: linear probe. The backbone is frozen; its features *with the reduction on* are
  computed once for the training split, and a new linear head is trained on them (the
  LookWhen paper's LP setting).
* ``ft``: fine-tune the whole backbone with the reduction on at the cell's P-Ratio (the
  LookWhen paper's FT setting), starting from the backbone's weights.

Both trainings go through :func:`tokbench.train.loop.fit` with a fixed schedule and keep
the last epoch: no model selection, so nothing is tuned on the split that is reported.
Training clips are one view each; the adapted model is then scored by
:func:`tokbench.benchmark.evaluate.evaluate` on the evaluation split, so its views are
merged by the dataset's evaluation protocol exactly as under ``eval`` (softmax mean for
VideoMAE's K400/SSv2 protocols, logits for the synthetic suite).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path

import torch
from torch import Tensor, nn

from tokbench.backbones.vit import VideoViT
from tokbench.data.batching import collate_clips
from tokbench.methods.base import Method
from tokbench.train.loop import TrainConfig, fit

__all__ = ["PROTOCOLS", "LP_CONFIG", "FT_CONFIG", "adapt", "linear_probe", "fine_tune"]

PROTOCOLS = ("eval", "lp", "ft")
LP_CONFIG = TrainConfig(epochs=30, batch_size=64, lr=3e-3, weight_decay=0.0, warmup_epochs=1, token_drop=0.0,
                        label_smoothing=0.0)
FT_CONFIG = TrainConfig(epochs=3, batch_size=32, lr=2e-4, warmup_epochs=0.5, token_drop=0.0)


class _Features(torch.utils.data.Dataset):
    """Pre-computed clip features as a dataset (``video`` holds the (D,) feature)."""

    def __init__(self, features: Tensor, items: list[dict], like) -> None:
        self.features, self.items = features, items
        self.card, self.num_verbs = like.card, getattr(like, "num_verbs", None)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {**self.items[i], "video": self.features[i]}


@torch.no_grad()
def _features(model: VideoViT, method: Method, dataset, device: torch.device, batch_size: int = 32) -> _Features:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_clips)
    feats, items = [], []
    for batch in loader:
        if batch["video"] is None:
            continue
        video = batch["video"].to(device)
        feats.append(model.forward_features(video, method, clip_ids=batch["index"].to(device)).cpu())
        for j in range(len(batch["id"])):
            item = {"id": batch["id"][j], "index": int(batch["index"][j])}
            item["label"] = batch["label"][j] if batch["label"].dim() > 1 else int(batch["label"][j])
            for key in ("verb", "noun"):
                if key in batch:
                    item[key] = int(batch[key][j])
            items.append(item)
    return _Features(torch.cat(feats), items, dataset)


def linear_probe(model: VideoViT, method: Method, train_set, *, config: TrainConfig = LP_CONFIG,
                 device: torch.device | None = None) -> VideoViT:
    """A copy of ``model`` whose head is a linear probe trained on the reduced tokens'
    features (backbone frozen)."""
    device = device or next(model.parameters()).device
    probe = copy.deepcopy(model).eval()
    for p in probe.parameters():
        p.requires_grad_(False)
    torch.manual_seed(config.seed)
    probe.head = nn.Linear(probe.head.in_features, probe.head.out_features).to(device)
    train_f = _features(probe, method, train_set, device)
    metric = train_set.card.metric

    with tempfile.TemporaryDirectory() as tmp:
        fit(probe.head, train_f, validate=None, metric=metric, out=Path(tmp) / "probe.safetensors",
            config=config, card={"kind": "linear_probe"}, forward=lambda head, b, g: head(b["video"].to(device)),
            device=device, progress=False)
        from safetensors.torch import load_file

        probe.head.load_state_dict(load_file(str(Path(tmp) / "probe.safetensors")))
    return probe.eval()


def fine_tune(model: VideoViT, method: Method, train_set, *, config: TrainConfig = FT_CONFIG,
              device: torch.device | None = None) -> VideoViT:
    """A copy of ``model`` fine-tuned end to end with ``method`` applied at its P-Ratio."""
    device = device or next(model.parameters()).device
    tuned = copy.deepcopy(model)
    for p in tuned.parameters():
        p.requires_grad_(True)
    metric = train_set.card.metric

    def forward(m, batch, _gen):
        video = batch["video"].to(device)
        return m(video, method, clip_ids=batch["index"].to(device))

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ft.safetensors"
        fit(tuned, train_set, validate=None, metric=metric, out=out, config=config, card={"kind": "fine_tune"},
            forward=forward, device=device, progress=False)
        from safetensors.torch import load_file

        tuned.load_state_dict(load_file(str(out)))
    return tuned.eval()


def adapt(protocol: str, model: VideoViT, method: Method, train_set, *, device=None) -> VideoViT:
    """The model to evaluate under ``protocol`` (``eval``: ``model`` itself)."""
    if protocol == "eval":
        return model
    if protocol == "lp":
        return linear_probe(model, method, train_set, device=device)
    return fine_tune(model, method, train_set, device=device)
