"""One pass over the data per group of cells: each video is decoded once per sweep, not once
per cell.

Video decoding is what a real evaluation waits on (PyAV decodes a 10 s K400 clip at ~7
videos/s on 2 cores; a GPU runs ViT-B at hundreds of clips/s). So the accuracy cells of a
sweep that see the same clips are evaluated together:

- **A group** is the accuracy cells, under the ``eval`` protocol, of one dataset, split and
  clip geometry (frames, size), in plan order; views, protocol and ``--limit`` are the
  sweep's, so they agree too. Different backbone weights may share a group (they see the
  same clips). ``lp``/``ft`` cells train a model each and keep their own pass.
- **Memory stays bounded.** A group holds at most :data:`MAX_CELLS` cells and at most
  :data:`MAX_NETWORKS` networks (distinct backbone weights, plus every method that brings a
  model of its own, such as LookWhen's extractor); the next cells start a new group. The
  loader keeps one decoded batch per worker ahead (``prefetch_factor=1``) beside the batch
  in flight.
- **The pass.** Every batch is decoded, transformed and moved to the device once; every
  cell of the group runs its method on it and appends its per-clip predictions at once
  (:class:`~tokbench.predictions.PredictionWriter`). A cell that fails (GPU out of memory,
  an exception) is recorded so and leaves the group; the others go on.
- **Crash safety and resume.** What a killed pass stored stays: the next pass reads each
  cell's stored clips and decodes only the clips some cell of the group still needs; each
  cell runs only on the clips it lacks. A cell's metrics are computed from its stored
  predictions once its last clip is in, so they equal those of a pass over the whole split.
- **torchrun.** Each rank takes every ``size``-th clip of the needed ones and writes its own
  prediction files; after the pass rank 0 reads the union.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from tokbench.benchmark.distributed import SINGLE, World
from tokbench.benchmark.evaluate import predict_batch, stored_labels
from tokbench.data.batching import ItemsAt, collate_clips
from tokbench.hooks import Method
from tokbench.predictions import PredictionWriter, prediction_files, read_predictions

__all__ = ["GroupMember", "group_key", "split_groups", "run_group_pass", "stored_indices", "MAX_CELLS", "MAX_NETWORKS"]

MAX_CELLS = 64
MAX_NETWORKS = 4


def group_key(cell) -> tuple:
    """What a group's cells share: the clips they see (dataset, split, clip geometry)."""
    return (cell.dataset, cell.split, cell.config.num_frames, cell.config.img_size, cell.config.in_chans)


def _brings_own_model(method_class: type) -> bool:
    return method_class.model is not Method.model


def split_groups(cells: list, method_class: Callable[[Any], type], *, max_cells: int = MAX_CELLS,
                 max_networks: int = MAX_NETWORKS) -> list[list]:
    """``cells`` (accuracy cells under ``eval``) grouped by :func:`group_key`, each group in
    plan order and split so that it holds at most ``max_cells`` cells and ``max_networks``
    networks (distinct weights, plus one per cell whose method brings its own model);
    groups appear in the order of their first cell."""
    by_key: dict[tuple, list[list]] = {}
    order: list[list] = []
    for cell in cells:
        chunks = by_key.setdefault(group_key(cell), [])
        own = _brings_own_model(method_class(cell))
        if chunks:
            last = chunks[-1]
            weights = {(c.config, c.checkpoint) for c in last} | {(cell.config, cell.checkpoint)}
            networks = len(weights) + sum(_brings_own_model(method_class(c)) for c in last) + own
            if len(last) < max_cells and networks <= max_networks:
                last.append(cell)
                continue
        chunks.append([cell])
        order.append(chunks[-1])
    return order


def stored_indices(results_dir, cell_key: str) -> set[int]:
    """Clips of the eval split a cell already has predictions for (from earlier, killed passes)."""
    if not prediction_files(results_dir, cell_key):
        return set()
    import warnings

    from tokbench.predictions import PredictionWarning

    with warnings.catch_warnings():  # a killed pass's partial last frame: reported when the cell is scored
        warnings.simplefilter("ignore", PredictionWarning)
        return set(read_predictions(results_dir, cell_key).index.tolist())


@dataclass
class GroupMember:
    """One cell of a group pass: its method (set up), the network it runs, where its
    predictions go, and what happened to it."""

    key: str
    method: Method
    model: torch.nn.Module
    writer: PredictionWriter
    need: set[int]  # clips (dataset positions) it still lacks
    model_seconds: float = 0.0
    error: BaseException | None = None
    rows: int = 0


@dataclass
class PassStats:
    clips_decoded: int = 0
    decode_seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)


def run_group_pass(members: list[GroupMember], dataset, *, batch_size: int, device: torch.device, dtype: str,
                   num_workers: int = 0, world: World = SINGLE, on_clips: Callable[[int], None] | None = None,
                   is_out_of_memory: Callable[[BaseException], bool] | None = None) -> PassStats:
    """Decode the clips some member still needs once, run every member that needs a batch's
    clips on it, and append each member's predictions. ``on_clips`` hears how many clips each
    batch held (a progress bar). A member that raises keeps the exception in ``error`` and
    leaves the pass (CUDA memory is released after an out-of-memory error).

    Returns:
        The clips decoded, the time spent waiting for decoded batches, and the videos that
        could not be read.
    """
    stats = PassStats(skipped=list(getattr(dataset, "missing", [])) if world.is_main else [])
    needed = sorted(set().union(*(m.need for m in members)))
    if world.distributed:
        needed = needed[world.rank::world.size]
    if not needed:
        return stats
    view = ItemsAt(dataset, needed, missing=[])
    cuda = device.type == "cuda"
    loader = DataLoader(view, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_clips,
                        pin_memory=cuda, **({"prefetch_factor": 1} if num_workers else {}))
    batches = iter(loader)
    while True:
        waited = time.perf_counter()
        batch = next(batches, None)
        stats.decode_seconds += time.perf_counter() - waited
        if batch is None:
            break
        stats.skipped += batch["skipped"]
        n = len(batch["id"]) + len(batch["skipped"])
        stats.clips_decoded += n
        if batch["video"] is not None:
            positions = batch["index"].tolist()
            if cuda:  # moved once for every member
                batch = {k: (v.to(device, non_blocking=True) if k == "video" else v) for k, v in batch.items()}
            for member in members:
                if member.error is not None:
                    continue
                rows = [i for i, p in enumerate(positions) if p in member.need]
                if not rows:
                    continue
                part_batch = batch if len(rows) == len(positions) else _rows(batch, rows)
                started = time.perf_counter()
                try:
                    part = predict_batch(member.model, member.method, part_batch, dataset, device=device, dtype=dtype)
                    member.writer.append(part.index.tolist(), part.ids, stored_labels(part, dataset.card.task),
                                         part.logits.numpy())
                except (Exception, SystemExit) as e:  # noqa: BLE001 - this member fails; the group goes on
                    member.error = e
                    if cuda and is_out_of_memory is not None and is_out_of_memory(e):
                        torch.cuda.empty_cache()
                    continue
                member.rows += len(rows)
                member.model_seconds += time.perf_counter() - started
        if on_clips is not None:
            on_clips(n)
    return stats


def _rows(batch: dict[str, Any], rows: list[int]) -> dict[str, Any]:
    """The collated batch restricted to ``rows`` (a member that lacks only some of its clips)."""
    pick = torch.tensor(rows, dtype=torch.long)
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            out[key] = value[pick.to(value.device)]
        elif isinstance(value, list) and key != "skipped":
            out[key] = [value[i] for i in rows]
        else:
            out[key] = value
    return out
