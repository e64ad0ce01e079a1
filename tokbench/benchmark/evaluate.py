"""Accuracy of a backbone + method on a dataset's evaluation split.

Each item may carry V views (temporal clips x spatial crops); every view runs through
the model, and the views are merged per video as the dataset's evaluation protocol says
(:func:`~tokbench.data.metrics.merge_views`: mean of logits, mean of softmax, or max of
sigmoid; ``dataset.aggregation``, ``logits`` for datasets without one such as the
synthetic suite). The same merging serves one process, torchrun shards (each rank merges
its own videos' views before the gather) and lp/ft (which evaluate through here). Clip ids
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
from tokbench.data.metrics import compute_metrics, merge_views
from tokbench.methods.base import Method

__all__ = ["Accuracy", "Predictions", "aggregation_of", "evaluate", "head_size", "merge_predictions", "predict", "score"]


@dataclass
class Accuracy:
    """Metrics of one evaluation (names as in :func:`compute_metrics`: ``top1``/``top5``,
    ``mAP``, or ``verb_top1``/``noun_top1``/``action_top1``)."""

    metrics: dict[str, float]
    clips: int  # videos evaluated
    views: int  # views per video
    skipped_videos: int  # annotated videos missing or undecodable
    skipped_ids: list[str] = field(default_factory=list)
    aggregation: str = "logits"  # how the views were merged (merge_views)


def head_size(dataset) -> int:
    """Logits the backbone needs for ``dataset``: classes, or verbs + nouns (verb logits
    first) for verb+noun datasets."""
    if dataset.card.task == "verb_noun":
        return dataset.num_verbs + dataset.num_nouns
    return dataset.num_classes


@dataclass
class Predictions:
    """View-merged scores of some videos, with what scoring needs.

    Attributes:
        logits: (n, outputs) float32 on the CPU: the views merged by the dataset's
            aggregation (mean logits, mean softmax probabilities or max sigmoid scores).
        labels: (n,) or (n, classes).
        index: (n,) each video's position in the dataset (sorts gathered shards).
        verbs, nouns: (n,) for verb+noun datasets, else ``None``.
        skipped: ids of videos that could not be read.
    """

    logits: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    verbs: torch.Tensor | None = None
    nouns: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)


def merge_predictions(parts: list[Predictions]) -> Predictions:
    """Concatenate shards and sort by video index: the same tensors, in the same order, as
    one process evaluating the whole set (so even float sums in the metrics agree)."""
    real = [p for p in parts if p.logits.shape[0]]
    skipped = sorted({s for p in parts for s in p.skipped})
    if not real:
        return Predictions(parts[0].logits, parts[0].labels, parts[0].index, skipped=skipped)
    index = torch.cat([p.index for p in real])
    order = index.argsort(stable=True)

    def cat(name: str):
        values = [getattr(p, name) for p in real]
        return None if values[0] is None else torch.cat(values)[order]

    return Predictions(logits=cat("logits"), labels=cat("labels"), index=index[order], verbs=cat("verbs"),
                       nouns=cat("nouns"), skipped=skipped)


def evaluate(
    model: VideoViT, method: Method, dataset, *, batch_size: int = 8, device: torch.device | None = None,
    dtype: str = "fp32", num_workers: int = 0, progress=None, world=None,
) -> Accuracy:
    """Evaluate ``model`` running ``method`` on every item of ``dataset``; with a
    distributed ``world`` (:mod:`tokbench.benchmark.distributed`), each rank evaluates its
    shard and every rank returns the metrics of the whole set.

    Args:
        model: backbone in eval mode on ``device``, with ``head_size(dataset)`` outputs.
        method: configured method (``setup`` already called).
        dataset: a tokbench dataset (items with ``video``, ``label``, ``index``...).
        batch_size: videos per batch (each with its views).
        progress: optional wrapper around the batch iterator (e.g. tqdm).

    Raises:
        DataError: no video of the dataset could be read.
    """
    if world is None or not world.distributed:
        return score(predict(model, method, dataset, batch_size=batch_size, device=device, dtype=dtype,
                             num_workers=num_workers, progress=progress), dataset)
    from tokbench.benchmark.distributed import shard

    part = error = None
    try:
        part = predict(model, method, shard(dataset, world), batch_size=batch_size, device=device, dtype=dtype,
                       num_workers=num_workers, progress=progress if world.is_main else None)
    except Exception as e:  # noqa: BLE001 - reported to every rank, re-raised below
        error = e
    return score(merge_predictions(world.gather_or_raise(part, error)), dataset)


def predict(
    model: VideoViT, method: Method, dataset, *, batch_size: int = 8, device: torch.device | None = None,
    dtype: str = "fp32", num_workers: int = 0, progress=None,
) -> Predictions:
    """View-merged scores of every readable item of ``dataset`` (arguments as for
    :func:`evaluate`); empty when nothing could be read (an empty shard)."""
    device = device or next(model.parameters()).device
    task = dataset.card.task
    views = getattr(dataset, "views", 1)
    how = aggregation_of(dataset)
    groups = (dataset.num_verbs, dataset.num_nouns) if task == "verb_noun" else None  # each head softmaxed alone
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_clips)
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "fp32" else contextlib.nullcontext()
    logits, labels, indices, verbs, nouns, skipped = [], [], [], [], [], list(getattr(dataset, "missing", []))
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
            logits.append(merge_views(out, views, how, groups=groups).cpu())
            labels.append(batch["label"])
            indices.append(batch["index"])
            if task == "verb_noun":
                verbs.append(batch["verb"])
                nouns.append(batch["noun"])
    if not logits:  # an empty shard (fewer videos than ranks), or nothing readable
        return Predictions(logits=torch.zeros(0, 0), labels=torch.zeros(0), index=torch.zeros(0, dtype=torch.long),
                           skipped=skipped)
    return Predictions(logits=torch.cat(logits), labels=torch.cat(labels), index=torch.cat(indices),
                       verbs=torch.cat(verbs) if verbs else None, nouns=torch.cat(nouns) if nouns else None,
                       skipped=skipped)


def score(pred: Predictions, dataset) -> Accuracy:
    """Metrics of ``pred`` on ``dataset``'s task.

    Raises:
        DataError: no video could be read.
    """
    if not pred.logits.shape[0]:
        raise DataError(f"no video of {dataset.card.name} could be read ({len(pred.skipped)} skipped)")
    kwargs = {}
    if dataset.card.task == "verb_noun":
        kwargs = dict(verbs=pred.verbs, nouns=pred.nouns, num_verbs=dataset.num_verbs, num_nouns=dataset.num_nouns)
    metrics = compute_metrics(dataset.card.task, pred.logits, pred.labels, **kwargs)
    return Accuracy(metrics=metrics, clips=pred.logits.shape[0], views=getattr(dataset, "views", 1),
                    skipped_videos=len(pred.skipped), skipped_ids=pred.skipped, aggregation=aggregation_of(dataset))


def aggregation_of(dataset) -> str:
    """How ``dataset``'s views are merged: its protocol's aggregation, or ``logits``."""
    return getattr(dataset, "aggregation", None) or "logits"
