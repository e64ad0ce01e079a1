"""Claims that survive the noise: seeds of one method pooled into one point, and the paired
test the report's summary asks (``better(p, q)``), both from the stored per-clip predictions.

- :func:`pool_seeds`: the cells of a stochastic method that differ only in their seed
  (``random``, ``random(seed=1)``, ``random(seed=2)`` at one P) become one point: the mean of
  their metrics, ``seeds`` naming them, ``cell_ids`` listing them. Its interval is the
  two-level bootstrap over clips and seeds (:mod:`tokbench.data.bootstrap`) when
  ``predictions`` finds every cell's predictions, else the envelope of the seeds' intervals
  (lowest low, highest high: wider than the truth, never narrower).
- :func:`paired_oracle`: ``better(p, q)`` is whether point p is more accurate than q on the
  same clips with the 95 % paired-bootstrap interval of p − q above 0 (seeds pooled on both
  sides). Points whose clips differ are never called better.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

__all__ = ["pool_seeds", "paired_oracle", "base_method_id", "prediction_finder", "pooled_with_oracle"]

_SEED = re.compile(r"seed=\d+,\s*|,\s*seed=\d+|(?<=\()seed=\d+")
_METRICS = ("top1", "top5", "mAP", "verb_top1", "noun_top1", "action_top1")


def base_method_id(method_id: str) -> str:
    """``random(seed=2)`` -> ``random``; ``random(x=1, seed=2)`` -> ``random(x=1)``."""
    out = _SEED.sub("", method_id)
    return out[:-2] if out.endswith("()") else out


def _seed_of(row: pd.Series) -> int:
    value = row.get("method_params.seed")
    if value is None or pd.isna(value):
        match = re.search(r"seed=(\d+)", str(row.get("method_id", "")))
        return int(match.group(1)) if match else 0
    return int(value)


def prediction_finder(roots: Sequence[str | Path]) -> Callable[[str], object | None]:
    """``find(cell_id)``: the cell's stored predictions under the first of ``roots`` (or a
    root's parent, for a ``runs`` folder) that has them, else ``None``. Memoised."""
    from tokbench.predictions import is_cell_id, prediction_files, read_predictions

    candidates = []
    for root in roots:
        root = Path(root)
        candidates += [root, root.parent]
    cache: dict[str, object | None] = {}

    def find(cell_id: str):
        if not is_cell_id(cell_id):  # a hand-made or foreign record: it can have no predictions
            return None
        if cell_id not in cache:
            cache[cell_id] = next((read_predictions(r, cell_id) for r in candidates if prediction_files(r, cell_id)), None)
        return cache[cell_id]

    return find


def _scored(rows: pd.DataFrame, metric: str, find, dataset_card) -> object | None:
    """A :class:`~tokbench.data.bootstrap.Scored` of the rows' cells (one run per seed), or
    ``None`` when a cell's predictions are missing or the cells saw different clips."""
    import numpy as np
    import torch

    from tokbench.data.bootstrap import Scored

    stored = [find(c) for c in rows["cell_id"]]
    if any(s is None for s in stored) or any(not np.array_equal(s.index, stored[0].index) for s in stored):
        return None
    first = stored[0]
    if dataset_card.task == "verb_noun":
        labels = torch.tensor(first.label, dtype=torch.long)
    elif dataset_card.task == "multilabel":
        labels = torch.zeros(len(first.label), first.scores.shape[1], dtype=torch.long)
        for i, present in enumerate(first.label):
            labels[i, present] = 1
    else:
        labels = torch.tensor(first.label, dtype=torch.long)
    runs = [torch.from_numpy(np.asarray(s.scores, dtype=np.float32)) for s in stored]
    return Scored(dataset_card.task, runs if len(runs) > 1 else runs[0], labels,
                  num_verbs=getattr(dataset_card, "num_verbs", None))


def pool_seeds(df: pd.DataFrame, find=None) -> pd.DataFrame:
    """``df`` (one row per cell) with the seed variants of a method at one P pooled into one
    row (module docstring); every other row as it is, with ``seeds`` and ``cell_ids`` too."""
    if df.empty or "method_id" not in df.columns:
        return df
    df = df.copy()
    df["method_base"] = [base_method_id(str(m)) for m in df["method_id"]]
    keys = [c for c in ("dataset", "backbone", "method", "method_base", "p_ratio", "status", "protocol") if c in df]
    out = []
    for _, group in df.groupby(keys, dropna=False, sort=False):
        row = group.iloc[0].copy()
        seeds = sorted(_seed_of(r) for _, r in group.iterrows())
        row["cell_ids"] = list(group["cell_id"]) if "cell_id" in group else []
        row["seeds"] = ",".join(map(str, seeds)) if len(group) > 1 else ""
        if len(group) > 1:
            row["method_id"] = row["method_base"]
            for column in (*_METRICS, "gflops", "clips_per_s", "ms_per_clip", "tokens_kept"):
                if column in group:
                    values = pd.to_numeric(group[column], errors="coerce")
                    row[column] = values.mean() if values.notna().any() else row[column]
            for metric in _METRICS:
                lo, hi = f"{metric}_lo", f"{metric}_hi"
                if lo in group and pd.to_numeric(group[lo], errors="coerce").notna().any():
                    row[lo], row[hi] = _pooled_interval(group, metric, find)
        out.append(row)
    pooled = pd.DataFrame(out).drop(columns=["method_base"])
    pooled.index = range(len(pooled))
    return pooled


def _pooled_interval(group: pd.DataFrame, metric: str, find) -> tuple[float, float]:
    """The two-level bootstrap interval of the seeds' mean, or the envelope of their intervals."""
    if find is not None and "dataset" in group:
        from tokbench.data import DATASETS
        from tokbench.data.bootstrap import bootstrap_intervals

        scored = _scored(group, metric, find, DATASETS.get(group["dataset"].iloc[0]).card)
        if scored is not None:
            _, lo, hi = bootstrap_intervals(scored)[metric]
            return lo, hi
    return (pd.to_numeric(group[f"{metric}_lo"], errors="coerce").min(),
            pd.to_numeric(group[f"{metric}_hi"], errors="coerce").max())


def paired_oracle(find) -> Callable[[pd.Series, pd.Series], bool]:
    """``better(p, q)`` for the summary (module docstring); rows need ``dataset``,
    ``accuracy_metric`` and ``cell_ids`` (:func:`pool_seeds`). Memoised per pair."""
    from tokbench.data import DATASETS
    from tokbench.data.bootstrap import paired_difference

    memo: dict[tuple, bool] = {}

    def rows_of(point: pd.Series) -> pd.DataFrame:
        ids = point.get("cell_ids")
        ids = list(ids) if isinstance(ids, (list, tuple)) and ids else [point["cell_id"]]
        return pd.DataFrame({"cell_id": ids})

    def better(p: pd.Series, q: pd.Series) -> bool:
        key = (tuple(rows_of(p)["cell_id"]), tuple(rows_of(q)["cell_id"]), p.get("accuracy_metric"))
        if key not in memo:
            metric = p.get("accuracy_metric")
            card = DATASETS.get(p["dataset"]).card
            a, b = _scored(rows_of(p), metric, find, card), _scored(rows_of(q), metric, find, card)
            if a is None or b is None or p["dataset"] != q["dataset"] or tuple(a.labels.shape) != tuple(b.labels.shape):
                memo[key] = False
            else:
                try:
                    memo[key] = paired_difference(a, b, metric).low > 0
                except Exception:  # noqa: BLE001 - e.g. different clips: not comparable, never "better"
                    memo[key] = False
        return memo[key]

    return better


def pooled_with_oracle(frame: pd.DataFrame, roots: Sequence[str | Path]):
    """What ``tokbench report`` draws from: ``frame`` (newest record per cell) with seeds
    pooled, and the paired-test oracle when the cells' predictions are found under ``roots``
    (``None`` otherwise: the summary then says it is point estimates)."""
    from tokbench.report.selection import newest_per_cell

    find = prediction_finder(roots)
    cells = newest_per_cell(frame)
    ok = cells[cells.get("status", pd.Series("ok", index=cells.index)) == "ok"]
    accuracy = ok[ok["dataset"].notna()] if "dataset" in ok else ok.iloc[:0]
    found = not accuracy.empty and all(find(c) is not None for c in accuracy["cell_id"])
    return pool_seeds(cells, find if found else None), paired_oracle(find) if found else None
