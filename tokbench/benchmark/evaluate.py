"""Accuracy of a backbone + method on a dataset's evaluation split.

Each item may carry V views (temporal clips x spatial crops); every view runs through
the model, and the views' logits are averaged per video (:func:`average_views`). Clip ids
passed to the method are ``index * V + view``, stable across methods and P-Ratios, so a
per-clip-seeded method (``random``) draws the same tokens for a clip in every run.
Videos that cannot be decoded are skipped and counted, never a crash.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from tokbench.backbones.vit import VideoViT
from tokbench.benchmark.timing import DTYPES
from tokbench.data.base import DataError
from tokbench.data.batching import collate_clips
from tokbench.data.metrics import average_views, compute_metrics
from tokbench.methods.base import Method

__all__ = ["Accuracy", "evaluate", "head_size"]


@dataclass
class Accuracy:
    """Metrics of one evaluation (names as in :func:`compute_metrics`: ``top1``/``top5``,
    ``mAP``, or ``verb_top1``/``noun_top1``/``action_top1``)."""

    metrics: dict[str, float]
    clips: int  # videos evaluated
    views: int  # views per video
    skipped_videos: int  # annotated videos missing or undecodable
    skipped_ids: list[str] = field(default_factory=list)


def head_size(dataset) -> int:
    """Logits the backbone needs for ``dataset``: classes, or verbs + nouns (verb logits
    first) for verb+noun datasets."""
    if dataset.card.task == "verb_noun":
        return dataset.num_verbs + dataset.num_nouns
    return dataset.num_classes


def evaluate(
    model: VideoViT, method: Method, dataset, *, batch_size: int = 8, device: torch.device | None = None,
    dtype: str = "fp32", num_workers: int = 0, progress=None,
) -> Accuracy:
    """Evaluate ``model`` running ``method`` on every item of ``dataset``.

    Args:
        model: backbone in eval mode on ``device``, with ``head_size(dataset)`` outputs.
        method: configured method (``setup`` already called).
        dataset: a tokbench dataset (items with ``video``, ``label``, ``index``...).
        batch_size: videos per batch (each with its views).
        progress: optional wrapper around the batch iterator (e.g. tqdm).

    Raises:
        DataError: no video of the dataset could be read.
    """
    device = device or next(model.parameters()).device
    task = dataset.card.task
    views = getattr(dataset, "views", 1)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_clips)
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "fp32" else contextlib.nullcontext()
    logits, labels, verbs, nouns, skipped = [], [], [], [], list(getattr(dataset, "missing", []))
    batches = progress(loader) if progress else loader
    with torch.inference_mode(), autocast:
        for batch in batches:
            skipped += batch["skipped"]
            if batch["video"] is None:
                continue
            video = batch["video"].to(device)
            if views > 1:  # (B, V, C, T, H, W) -> (B * V, C, T, H, W), video-major
                video = video.flatten(0, 1)
            ids = (batch["index"][:, None] * views + torch.arange(views)).flatten().to(device)
            labels_in = None
            if method.privileged:  # LITE's oracle reads the true classes, as (B, outputs) weights
                from tokbench.methods.lite import target_weights

                labels_in = target_weights(task, batch["label"], model.config.num_classes,
                                           num_verbs=getattr(dataset, "num_verbs", None),
                                           verbs=batch.get("verb"), nouns=batch.get("noun"))
                labels_in = labels_in.repeat_interleave(views, dim=0).to(device)
            out = model(video, method, clip_ids=ids, labels=labels_in).float()
            logits.append(average_views(out, views).cpu())
            labels.append(batch["label"])
            if task == "verb_noun":
                verbs.append(batch["verb"])
                nouns.append(batch["noun"])
    if not logits:
        raise DataError(f"no video of {dataset.card.name} could be read ({len(skipped)} skipped)")
    all_logits = torch.cat(logits)
    kwargs = {}
    if task == "verb_noun":
        kwargs = dict(verbs=torch.cat(verbs), nouns=torch.cat(nouns), num_verbs=dataset.num_verbs,
                      num_nouns=dataset.num_nouns)
    metrics = compute_metrics(task, all_logits, torch.cat(labels), **kwargs)
    return Accuracy(metrics=metrics, clips=all_logits.shape[0], views=views, skipped_videos=len(skipped),
                    skipped_ids=skipped)
