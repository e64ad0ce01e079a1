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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from tokbench.backbones.vit import VideoViT
from tokbench.benchmark.distributed import shard
from tokbench.benchmark.timing import DTYPES
from tokbench.data import create_dataset
from tokbench.data.base import DataError
from tokbench.data.batching import collate_clips
from tokbench.data.bootstrap import LEVEL, RESAMPLES, Scored, bootstrap_intervals
from tokbench.data.labels import target_weights
from tokbench.data.metrics import compute_metrics, merge_views
from tokbench.methods import build_method
from tokbench.methods.base import Method

__all__ = ["Accuracy", "Predictions", "aggregation_of", "evaluate", "head_size", "merge_predictions", "predict", "score",
           "scored", "stored_labels", "slice_check", "CHECK_CLIPS", "predict_batch", "from_store"]


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
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)  # 95 % bootstrap over clips
    bootstrap: dict[str, Any] = field(default_factory=dict)  # resamples, seed, level
    predictions: Predictions | None = None  # the merged per-clip scores the metrics come from


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
        ids: (n,) the videos' clip ids.

    The merged scores are float32, as the predictions store keeps them: every metric is
    computed from exactly what is stored.
    """

    logits: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    verbs: torch.Tensor | None = None
    nouns: torch.Tensor | None = None
    skipped: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


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

    ids = [i for p in real for i in p.ids]
    return Predictions(logits=cat("logits"), labels=cat("labels"), index=index[order], verbs=cat("verbs"),
                       nouns=cat("nouns"), skipped=skipped, ids=[ids[i] for i in order.tolist()] if ids else [])


def evaluate(
    model: VideoViT, method: Method, dataset, *, batch_size: int = 8, device: torch.device | None = None,
    dtype: str = "fp32", num_workers: int = 0, progress=None, world=None,
    on_batch: Callable[[Predictions], None] | None = None,
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
        on_batch: called with each batch's predictions as soon as they are made (on every
            rank, with that rank's videos): the runner appends them to the predictions store.

    Returns:
        The metrics, with the merged predictions of the whole set in ``predictions``.

    Raises:
        DataError: no video of the dataset could be read.
    """
    if world is None or not world.distributed:
        return score(predict(model, method, dataset, batch_size=batch_size, device=device, dtype=dtype,
                             num_workers=num_workers, progress=progress, on_batch=on_batch), dataset)
    part = error = None
    try:
        part = predict(model, method, shard(dataset, world), batch_size=batch_size, device=device, dtype=dtype,
                       num_workers=num_workers, progress=progress if world.is_main else None, on_batch=on_batch)
    except Exception as e:  # noqa: BLE001 - reported to every rank, re-raised below
        error = e
    return score(merge_predictions(world.gather_or_raise(part, error)), dataset)


def predict(
    model: VideoViT, method: Method, dataset, *, batch_size: int = 8, device: torch.device | None = None,
    dtype: str = "fp32", num_workers: int = 0, progress=None, on_batch: Callable[[Predictions], None] | None = None,
) -> Predictions:
    """View-merged scores of every readable item of ``dataset`` (arguments as for
    :func:`evaluate`); empty when nothing could be read (an empty shard)."""
    device = device or next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        collate_fn=collate_clips)
    parts: list[Predictions] = []
    skipped = list(getattr(dataset, "missing", []))
    for batch in progress(loader) if progress else loader:
        skipped += batch["skipped"]
        if batch["video"] is None:
            continue
        part = predict_batch(model, method, batch, dataset, device=device, dtype=dtype)
        if on_batch is not None:
            on_batch(part)
        parts.append(part)
    if not parts:  # an empty shard (fewer videos than ranks), or nothing readable
        return Predictions(logits=torch.zeros(0, 0), labels=torch.zeros(0), index=torch.zeros(0, dtype=torch.long),
                           skipped=skipped)
    merged = merge_predictions(parts)
    merged.skipped = skipped
    return merged


def predict_batch(model: VideoViT, method: Method, batch: dict[str, Any], dataset, *, device: torch.device,
                  dtype: str = "fp32") -> Predictions:
    """One collated batch (:func:`~tokbench.data.batching.collate_clips`, every video readable)
    through ``model`` running ``method``: each video's views merged as ``dataset``'s protocol
    says (float32, as the predictions store keeps them). Clip ids are
    ``index * V + view``, so a per-clip seeded method draws the same tokens for a clip in any
    batch; a privileged method receives the true classes."""
    task = dataset.card.task
    views = getattr(dataset, "views", 1)
    groups = (dataset.num_verbs, dataset.num_nouns) if task == "verb_noun" else None  # each head softmaxed alone
    autocast = torch.autocast(device.type, dtype=DTYPES[dtype]) if dtype != "fp32" else contextlib.nullcontext()
    video = batch["video"].to(device, non_blocking=True)
    if views > 1:  # (B, V, C, T, H, W) -> (B * V, C, T, H, W), video-major
        video = video.flatten(0, 1)
    ids = (batch["index"][:, None] * views + torch.arange(views)).flatten().to(device)
    labels_in = None
    if method.privileged:  # LITE's oracle reads the true classes, as (B, outputs) weights
        labels_in = target_weights(task, batch["label"], model.config.num_classes,
                                   num_verbs=getattr(dataset, "num_verbs", None),
                                   verbs=batch.get("verb"), nouns=batch.get("noun"))
        labels_in = labels_in.repeat_interleave(views, dim=0).to(device)
    with torch.inference_mode(), autocast:
        out = model(video, method, clip_ids=ids, labels=labels_in).float()
    merged = merge_views(out, views, aggregation_of(dataset), groups=groups).cpu().float()
    return Predictions(logits=merged, labels=batch["label"], index=batch["index"],
                       verbs=batch.get("verb") if task == "verb_noun" else None,
                       nouns=batch.get("noun") if task == "verb_noun" else None, ids=list(batch["id"]))


def stored_labels(pred: Predictions, task: str) -> list:
    """Each video's label as the predictions store keeps it (JSON): the class id (single), the
    ids of the classes present (multi-label), or ``[verb, noun]``."""
    if task == "verb_noun":
        return [[int(v), int(n)] for v, n in zip(pred.verbs.tolist(), pred.nouns.tolist())]
    if task == "multilabel":
        return [torch.nonzero(row > 0.5).flatten().tolist() for row in pred.labels]
    return [int(x) for x in pred.labels.tolist()]


def from_store(stored, dataset, *, skipped: list[str] | None = None) -> Predictions:
    """A cell's stored predictions (:class:`tokbench.predictions.Predictions`) as the
    :class:`Predictions` that :func:`score` takes: the same float32 scores, labels decoded
    from the store's JSON (:func:`stored_labels` is the inverse)."""
    task = dataset.card.task
    logits = torch.from_numpy(stored.scores.astype("float32"))
    index = torch.from_numpy(stored.index.astype("int64"))
    verbs = nouns = None
    if task == "verb_noun":
        verbs = torch.tensor([v for v, _ in stored.label], dtype=torch.long)
        nouns = torch.tensor([n for _, n in stored.label], dtype=torch.long)
        labels = verbs * 1000 + nouns  # the action id (EPIC's convention); scoring reads verbs and nouns
    elif task == "multilabel":
        labels = torch.zeros(len(stored.label), logits.shape[1])
        for i, present in enumerate(stored.label):
            labels[i, present] = 1.0
    else:
        labels = torch.tensor(stored.label, dtype=torch.long)
    return Predictions(logits=logits, labels=labels, index=index, verbs=verbs, nouns=nouns,
                       skipped=list(skipped or []), ids=list(stored.clip_id))


def scored(pred: Predictions, dataset) -> Scored:
    """``pred`` as :mod:`tokbench.data.bootstrap` takes it."""
    task = dataset.card.task
    labels = torch.stack([pred.verbs, pred.nouns], dim=1) if task == "verb_noun" else pred.labels
    return Scored(task, pred.logits, labels, num_verbs=getattr(dataset, "num_verbs", None))


def score(pred: Predictions, dataset, *, resamples: int = RESAMPLES, seed: int = 0) -> Accuracy:
    """Metrics of ``pred`` on ``dataset``'s task, each with its 95 % bootstrap interval over
    the clips (``resamples`` resamples drawn from ``seed``; 0 resamples: no intervals).

    Raises:
        DataError: no video could be read.
    """
    if not pred.logits.shape[0]:
        raise DataError(f"no video of {dataset.card.name} could be read ({len(pred.skipped)} skipped)")
    kwargs = {}
    if dataset.card.task == "verb_noun":
        kwargs = dict(verbs=pred.verbs, nouns=pred.nouns, num_verbs=dataset.num_verbs, num_nouns=dataset.num_nouns)
    metrics = compute_metrics(dataset.card.task, pred.logits, pred.labels, **kwargs)
    intervals = {}
    if resamples:
        intervals = {name: (lo, hi) for name, (_, lo, hi) in
                     bootstrap_intervals(scored(pred, dataset), resamples=resamples, seed=seed).items()}
    return Accuracy(metrics=metrics, clips=pred.logits.shape[0], views=getattr(dataset, "views", 1),
                    skipped_videos=len(pred.skipped), skipped_ids=pred.skipped, aggregation=aggregation_of(dataset),
                    intervals=intervals, bootstrap={"resamples": resamples, "seed": seed, "level": LEVEL},
                    predictions=pred)


def aggregation_of(dataset) -> str:
    """How ``dataset``'s views are merged: its protocol's aggregation, or ``logits``."""
    return getattr(dataset, "aggregation", None) or "logits"


#: Val clips of a zoo card's ``check``.
CHECK_CLIPS = 64


def slice_check(model, dataset: str, *, geometry: dict, device=None, clips: int = CHECK_CLIPS,
                method=None) -> dict[str, Any]:
    """Accuracy of ``model`` (all tokens, or under ``method``, already set up) on the first
    ``clips`` val clips: a zoo card's ``check``, re-measured by the tests."""
    ds = create_dataset(dataset, split="val", num_clips=clips, **geometry)
    metrics = evaluate(model, method or build_method("none"), ds, batch_size=64, device=device).metrics
    return {"split": "val", "clips": clips, **metrics}
