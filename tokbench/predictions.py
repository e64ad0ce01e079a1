"""Per-clip predictions of accuracy cells: what each evaluated clip produced, append-only.

Every accuracy cell keeps, beside its record, one row per evaluated video: its index in the
split, its clip id, its label(s) and its view-merged class scores (float32, as the model made them:
no rounding may flip a near-tie between what is scored and what is stored). Any metric can be
recomputed, bootstrapped or re-scored from them without running the model again; the record's
accuracy metrics are computed from exactly these rows, so recomputing them gives the record's
numbers to the last digit.

Layout: ``<results>/predictions/<cell_id>/<run_id>.tbp``, one file per cell and run (a run
resumed after a crash adds a file; readers take the union, each clip once). A file is a
sequence of frames, one per evaluated batch, appended and fsynced as the batch is scored::

    b"TBP1" | uint32 header bytes H | uint32 payload bytes P | uint32 crc32(header + payload)
    header: JSON {"index": [...], "clip_id": [...], "label": [...], "rows": n, "classes": K,
                  "dtype": "<f4"}
    payload: n x K little-endian scores of that dtype (float32), row-major

A frame is complete or it is not there: a file cut short by a kill ends in a partial frame,
which readers drop (``PredictionWarning``), as they do a frame whose checksum fails. Labels
are JSON per clip: an integer class (single-label), a list of class ids (multi-label), or
``[verb, noun]`` (verb+noun; scores are the verb block then the noun block).

Size: 4 bytes per class per clip plus ~30 bytes of header per clip (index, id, label):
Kinetics-400 val (19,881 clips x 400 classes) ~32 MB per cell, SSv2 val (24,777 x 174)
~18 MB, a synthetic cell (500 x 10) ~35 kB.

This module imports numpy only (no torch, no tokbench modules above the store).
"""

from __future__ import annotations

import json
import os
import re
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tokbench.errors import ResultsError, TokbenchWarning

__all__ = ["PredictionWriter", "Predictions", "PredictionWarning", "read_predictions", "load_predictions",
           "prediction_files", "predictions_folder"]

MAGIC = b"TBP1"
_HEAD = struct.Struct("<4sIII")  # magic, header bytes, payload bytes, crc32
SUFFIX = ".tbp"


class PredictionWarning(TokbenchWarning):
    """A predictions file that ends in a partial frame or holds a damaged one (dropped)."""


def is_cell_id(cell_id: object) -> bool:
    """Whether ``cell_id`` has the form of a cell id (16 lower-case hex digits)."""
    return isinstance(cell_id, str) and re.fullmatch(r"[0-9a-f]{16}", cell_id) is not None


def predictions_folder(results_dir: str | Path, cell_id: str) -> Path:
    """``<results>/predictions/<cell_id>``: where a cell's prediction files go."""
    if not is_cell_id(cell_id):
        raise ResultsError(f"{cell_id!r} is not a cell id (16 hex digits, the cell_id of a record)")
    return Path(results_dir) / "predictions" / cell_id


def prediction_files(results_dir: str | Path, cell_id: str) -> list[Path]:
    folder = predictions_folder(results_dir, cell_id)
    return sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []


class PredictionWriter:
    """Appends one cell's predictions, batch by batch, to its own file of this run.

    The file is created on the first batch; each :meth:`append` is on disk (fsynced) when it
    returns, so a killed run loses at most the batch in flight.
    """

    def __init__(self, results_dir: str | Path, cell_id: str, run_id: str) -> None:
        safe_run = re.sub(r"[^A-Za-z0-9._-]+", "-", run_id)
        self.path = predictions_folder(results_dir, cell_id) / f"{safe_run}{SUFFIX}"
        self._file = None
        self.rows = 0

    def append(self, index: Sequence[int], clip_ids: Sequence[str], labels: Sequence[Any], scores: np.ndarray) -> None:
        """One batch: ``index`` (n,) positions in the split, ``clip_ids`` (n,), ``labels`` (n,)
        JSON-able labels, ``scores`` (n, K) view-merged class scores (stored as float32)."""
        scores = np.ascontiguousarray(np.asarray(scores, dtype="<f4"))
        n = len(index)
        if scores.ndim != 2 or scores.shape[0] != n or len(clip_ids) != n or len(labels) != n:
            raise ValueError(f"a batch of {n} clips needs {n} ids, labels and score rows; got {len(clip_ids)}, "
                             f"{len(labels)} and scores of shape {scores.shape}")
        header = json.dumps({"index": [int(i) for i in index], "clip_id": [str(c) for c in clip_ids],
                             "label": list(labels), "rows": n, "classes": int(scores.shape[1]), "dtype": "<f4"},
                            separators=(",", ":")).encode()
        payload = scores.tobytes()
        frame = _HEAD.pack(MAGIC, len(header), len(payload), zlib.crc32(header + payload)) + header + payload
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "xb")  # noqa: SIM115 - held open across batches; never another run's file
        self._file.write(frame)
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows += n

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Predictions:
    """One cell's stored predictions, one row per clip, sorted by ``index``.

    Attributes:
        index: (n,) int64 positions in the evaluated split.
        clip_id: n clip ids.
        label: n labels (int, list of ints, or [verb, noun]).
        scores: (n, K) float32 view-merged class scores.
    """

    index: np.ndarray
    clip_id: list[str]
    label: list[Any]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def to_frame(self):
        """A pandas DataFrame: ``index``, ``clip_id``, ``label`` and one ``score_<k>`` column per class."""
        import pandas as pd

        frame = pd.DataFrame({"index": self.index, "clip_id": self.clip_id, "label": self.label})
        scores = pd.DataFrame(self.scores.astype(np.float32), columns=[f"score_{k}" for k in range(self.scores.shape[1])])
        return pd.concat([frame, scores], axis=1)


def _frames(path: Path):
    """The complete, intact frames of one file as (header dict, scores); warns about the rest."""
    data = path.read_bytes()
    at = 0
    while at < len(data):
        if len(data) - at < _HEAD.size:
            warnings.warn(f"{path}: dropped a partial last frame ({len(data) - at} bytes; a killed run)",
                          PredictionWarning, stacklevel=3)
            return
        magic, h, p, crc = _HEAD.unpack_from(data, at)
        body = data[at + _HEAD.size: at + _HEAD.size + h + p]
        if magic != MAGIC:
            warnings.warn(f"{path}: not a predictions frame at byte {at}; the rest of the file is dropped",
                          PredictionWarning, stacklevel=3)
            return
        if len(body) < h + p:
            warnings.warn(f"{path}: dropped a partial last frame ({len(body)} of {h + p} bytes; a killed run)",
                          PredictionWarning, stacklevel=3)
            return
        at += _HEAD.size + h + p
        if zlib.crc32(body) != crc:
            warnings.warn(f"{path}: dropped a damaged frame (checksum) ending at byte {at}", PredictionWarning,
                          stacklevel=3)
            continue
        header = json.loads(body[:h])
        dtype = np.dtype(header.get("dtype", "<f2"))  # frames written before the dtype was named: float16
        if dtype.kind != "f" or len(body) - h != header["rows"] * header["classes"] * dtype.itemsize:
            warnings.warn(f"{path}: dropped a frame whose scores do not fit its header, ending at byte {at}",
                          PredictionWarning, stacklevel=3)
            continue
        scores = np.frombuffer(body[h:], dtype=dtype).astype("<f4").reshape(header["rows"], header["classes"])
        yield header, scores


def read_predictions(results_dir: str | Path, cell_id: str, *, files: Sequence[Path] | None = None) -> Predictions:
    """Every stored prediction of cell ``cell_id`` under ``results_dir``: the union of its
    files (each clip once, the first stored), sorted by index.

    Raises:
        ResultsError: the cell has no stored predictions.
    """
    files = prediction_files(results_dir, cell_id) if files is None else list(files)
    rows: dict[int, tuple[str, Any, np.ndarray]] = {}
    classes = None
    for path in files:
        for header, scores in _frames(path):
            if classes is None:
                classes = header["classes"]
            for i, (index, clip, label) in enumerate(zip(header["index"], header["clip_id"], header["label"])):
                rows.setdefault(index, (clip, label, scores[i]))
    if not rows:
        raise ResultsError(f"no stored predictions of cell {cell_id} under {results_dir} "
                           "(accuracy cells store them in predictions/<cell_id>/)")
    order = sorted(rows)
    return Predictions(index=np.asarray(order, dtype=np.int64), clip_id=[rows[i][0] for i in order],
                       label=[rows[i][1] for i in order],
                       scores=np.stack([rows[i][2] for i in order]).astype("<f4", copy=False).reshape(len(order), classes))


def load_predictions(results: str | Path, cell_id: str) -> Predictions:
    """The stored per-clip predictions of one accuracy cell: ``results`` is the results
    folder that holds ``predictions/`` (``results``, or a curated copy such as
    ``results/synthetic``), or its ``runs`` folder; ``cell_id`` is a record's ``cell_id``.

    >>> pred = load_predictions("results", df.cell_id[0])   # doctest: +SKIP
    >>> pred.to_frame()                                       # doctest: +SKIP

    Raises:
        ResultsError: no predictions of that cell there.
    """
    results = Path(results)
    for root in (results, results.parent):
        if prediction_files(root, cell_id):
            return read_predictions(root, cell_id)
    return read_predictions(results, cell_id)  # raises, naming the folder asked for
