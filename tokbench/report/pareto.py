"""Pareto analysis of accuracy against cost, as pure functions of results DataFrames (no torch).

A point dominates another if it costs no more and is no less accurate, and is strictly
better in one of the two. For throughput the cost is the time per clip (higher clips/s is
better), so callers pass ``cost = -clips_per_s`` or ``ms_per_clip``.
"""

from __future__ import annotations

import pandas as pd

from tokbench.errors import TokbenchError

__all__ = ["pareto_mask", "filter_results"]


def pareto_mask(cost: pd.Series, accuracy: pd.Series) -> pd.Series:
    """Boolean Series: True for the points no other point dominates (lower cost is better,
    higher accuracy is better). Ties (identical points) are all on the front."""
    c, a = cost.to_numpy(dtype=float), accuracy.to_numpy(dtype=float)  # positional: the index may repeat
    front = [False] * len(c)
    best, last_cost = float("-inf"), None
    for i in sorted(range(len(c)), key=lambda i: (c[i], -a[i])):
        if a[i] > best or (a[i] == best and c[i] == last_cost):
            front[i] = True
            best, last_cost = a[i], c[i]
    return pd.Series(front, index=cost.index)


def filter_results(df: pd.DataFrame, **filters: tuple[str, ...] | None) -> pd.DataFrame:
    """Rows whose ``column`` value is one of ``filters[column]`` (e.g. ``dataset=("synth-motion",)``,
    ``method=("lite", "random")``); ``None`` keeps every row.

    Raises:
        TokbenchError: an empty filter, or a value that no row has (the message lists the valid ones).
    """
    for column, wanted in filters.items():
        if wanted is None:
            continue
        have = sorted(str(v) for v in df[column].dropna().unique()) if column in df.columns else []
        if not wanted:
            raise TokbenchError(f"empty {column} filter: give one or more names; the results have: "
                                f"{', '.join(have) or 'none'}")
        unknown = [w for w in wanted if w not in have]
        if unknown:
            raise TokbenchError(f"no results with {column} {', '.join(map(repr, unknown))}; "
                                f"the results have: {', '.join(have) or 'none'}")
        df = df[df[column].astype(str).isin(wanted)]
    return df
