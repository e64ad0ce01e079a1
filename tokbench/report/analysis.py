"""The report's numbers, as pure functions of a results DataFrame (no torch).

Input rows are records with ``status == "ok"``, a ``dataset`` (a panel), a ``method``, its
``p_ratio``, ``gflops``, ``clips_per_s`` and the headline ``accuracy`` (see
:func:`tokbench.report.tables.headline_accuracy`).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from tokbench.report.pareto import pareto_mask

__all__ = ["dominates", "dominance_panels", "dominance_summary", "speedup_at_equal_accuracy", "dataset_table",
           "significant_dominance", "significant_panels", "significant_wins", "significance_summary",
           "unsupported_claims", "Better"]

#: ``better(p, q)``: whether point ``p`` (a results row) is significantly more accurate than
#: point ``q`` (e.g. a paired bootstrap on their stored predictions excludes 0).
Better = Callable[[pd.Series, pd.Series], bool]


def dominates(a: pd.DataFrame, b: pd.DataFrame, *, x: str = "gflops") -> bool:
    """Whether method ``a`` Pareto-dominates method ``b`` in one panel: every point of ``b``
    is matched by a point of ``a`` that costs no more and is no less accurate, and at least
    one of those is strictly better in one of the two. (For ``x = "clips_per_s"`` more is
    cheaper.)"""
    if a.empty or b.empty:
        return False
    sign = -1.0 if x == "clips_per_s" else 1.0
    strict = False
    for _, q in b.iterrows():
        cover = a[(sign * a[x] <= sign * q[x]) & (a["accuracy"] >= q["accuracy"])]
        if cover.empty:
            return False
        strict |= bool(((sign * cover[x] < sign * q[x]) | (cover["accuracy"] > q["accuracy"])).any())
    return strict


def dominance_panels(df: pd.DataFrame, *, x: str = "gflops") -> dict[tuple[str, str], list[str]]:
    """``{(a, b): panels}`` where reduction method ``a`` Pareto-dominates ``b`` by point
    estimates (:func:`dominates`), for every ordered pair with at least one such panel; the
    full model and privileged methods are left out."""
    rows = _compared(df)
    panels = sorted(rows["dataset"].unique())
    methods = sorted(rows["method"].unique())
    out = {}
    for a in methods:
        for b in methods:
            if a == b:
                continue
            wins = [p for p in panels if dominates(rows[(rows.dataset == p) & (rows.method == a)],
                                                   rows[(rows.dataset == p) & (rows.method == b)], x=x)]
            if wins:
                out[a, b] = wins
    return out


def dominance_summary(df: pd.DataFrame, *, x: str = "gflops") -> list[str]:
    """Sentences in the papers' form ("lookwhen Pareto-dominates lite on 4 of 6 panels"),
    one per ordered pair of reduction methods that dominates on at least one panel; the full
    model and privileged methods are left out."""
    n = len(_compared(df)["dataset"].unique())
    return [_claim(a, b, wins, n) for (a, b), wins in dominance_panels(df, x=x).items()]


def unsupported_claims(df: pd.DataFrame, significant: dict[tuple[str, str], list[str]], *,
                       x: str = "gflops") -> list[str]:
    """The point-estimate dominance claims (:func:`dominance_panels`) on panels where the
    paired test does not support them (``significant``, from :func:`significant_panels`),
    one sentence per ordered pair, naming only those panels."""
    n = len(_compared(df)["dataset"].unique())
    out = []
    for (a, b), wins in dominance_panels(df, x=x).items():
        weak = [p for p in wins if p not in significant.get((a, b), [])]
        if weak:
            out.append(_claim(a, b, weak, n))
    return out


def _compared(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["method"] != "none") & ~df.get("privileged", pd.Series(False, index=df.index)).astype(bool)]


def _claim(a: str, b: str, panels: list[str], n: int) -> str:
    return f"{a} Pareto-dominates {b} on {len(panels)} of {n} panels ({', '.join(panels)})"


def significant_dominance(a: pd.DataFrame, b: pd.DataFrame, better: Better, *, x: str = "gflops") -> str | None:
    """Dominance that survives the noise, in one panel.

    Each point q of ``b`` is matched with ``a``'s most accurate point among those that cost no
    more than q. Then:

    - ``"dominates"``: every q has a match, no q is significantly better than its match, and at
      least one match is significantly better than its q;
    - ``"tie"``: every q has a match and no difference either way is significant (``a`` is at
      least as good as ``b`` wherever ``b`` is, within the noise);
    - ``None``: some q has no match at its cost, or is significantly better than its match.
    """
    if a.empty or b.empty:
        return None
    sign = -1.0 if x == "clips_per_s" else 1.0
    won = False
    for _, q in b.iterrows():
        cheaper = a[sign * a[x] <= sign * q[x]]
        if cheaper.empty:
            return None
        match = cheaper.loc[cheaper["accuracy"].idxmax()]
        if better(q, match):
            return None
        won |= better(match, q)
    return "dominates" if won else "tie"


def significant_panels(df: pd.DataFrame, better: Better, *, x: str = "gflops") -> dict[tuple[str, str, str], str | None]:
    """:func:`significant_dominance` of every ordered pair of reduction methods on every
    panel: ``{(panel, a, b): verdict}``."""
    rows = _compared(df)
    verdict: dict[tuple[str, str, str], str | None] = {}
    methods = sorted(rows["method"].unique())
    for panel in sorted(rows["dataset"].unique()):
        here = rows[rows.dataset == panel]
        for a in methods:
            for b in methods:
                if a != b:
                    verdict[panel, a, b] = significant_dominance(here[here.method == a], here[here.method == b],
                                                                 better, x=x)
    return verdict


def significance_summary(df: pd.DataFrame, better: Better, *, x: str = "gflops",
                         verdict: dict[tuple[str, str, str], str | None] | None = None) -> tuple[list[str], list[str]]:
    """The dominance summary with only claims the paired test supports at 95 %.

    Args:
        verdict: :func:`significant_panels` of ``df``, when the caller has it already.

    Returns:
        (claims, ties): "a Pareto-dominates b on k of n panels (...)" per ordered pair with at
        least one significant panel, and "a and b are indistinguishable on k of n panels (...)"
        per unordered pair whose every point is matched both ways with no significant
        difference. The full model and privileged methods are left out.
    """
    rows = _compared(df)
    panels = sorted(rows["dataset"].unique())
    methods = sorted(rows["method"].unique())
    verdict = significant_panels(df, better, x=x) if verdict is None else verdict
    claims, ties = [], []
    for a in methods:
        for b in methods:
            if a == b:
                continue
            wins = [p for p in panels if verdict[p, a, b] == "dominates"]
            if wins:
                claims.append(_claim(a, b, wins, len(panels)))
            if a < b:
                same = [p for p in panels if verdict[p, a, b] == "tie" and verdict[p, b, a] == "tie"]
                if same:
                    ties.append(f"{a} and {b} are indistinguishable on {len(same)} of {len(panels)} panels "
                                f"({', '.join(same)})")
    return claims, ties


def significant_wins(verdict: dict[tuple[str, str, str], str | None]) -> dict[tuple[str, str], list[str]]:
    """``{(a, b): panels}`` where the verdict of :func:`significant_panels` is "dominates"."""
    out: dict[tuple[str, str], list[str]] = {}
    for (panel, a, b), v in sorted(verdict.items()):
        if v == "dominates":
            out.setdefault((a, b), []).append(panel)
    return out


def speedup_at_equal_accuracy(method: pd.DataFrame, reference: pd.DataFrame) -> float | None:
    """The LookWhen paper's "N x faster at equal accuracy": the largest throughput at which
    ``method``'s accuracy-throughput path (points sorted by P, linearly interpolated) reaches
    the reference's accuracy, divided by the reference's throughput. ``None`` if it never
    reaches it. ``reference`` is one point (the full model)."""
    ref = reference.iloc[0]
    path = method.sort_values("p_ratio")[["clips_per_s", "accuracy"]].dropna().to_numpy()
    best = None
    for (s0, a0), (s1, a1) in zip(path[:-1], path[1:]):
        if (a0 - ref.accuracy) * (a1 - ref.accuracy) <= 0 and a0 != a1:
            t = (ref.accuracy - a0) / (a1 - a0)
            speed = s0 + t * (s1 - s0)
            best = speed if best is None else max(best, speed)
    for s, a in path:  # points at or above the reference count as they are
        if a >= ref.accuracy:
            best = s if best is None else max(best, s)
    return None if best is None else float(best / ref.clips_per_s)


def dataset_table(panel: pd.DataFrame) -> str:
    """Markdown table of one dataset: a row per (method, P) with accuracy (%), GFLOPs,
    clips/s, tokens kept, and whether the point is on the panel's accuracy-FLOPs Pareto front
    (non-privileged points)."""
    panel = panel.sort_values(["method", "p_ratio"]).reset_index(drop=True)
    public = ~panel.get("privileged", pd.Series(False, index=panel.index)).astype(bool)
    front = pd.Series(False, index=panel.index)
    front[public] = pareto_mask(panel.loc[public, "gflops"], panel.loc[public, "accuracy"])
    lines = ["| method | P | accuracy (%) | GFLOPs | clips/s | tokens kept | Pareto |", "|---|---|---|---|---|---|---|"]
    for i, r in panel.iterrows():
        speed = "–" if pd.isna(r.get("clips_per_s")) else f"{r['clips_per_s']:.1f}"
        tokens = "–" if pd.isna(r.get("tokens_kept")) else f"{r['tokens_kept']:.0f}"
        name = r["method_id"] + (" (privileged)" if not public[i] else "")
        lines.append(f"| {name} | {r['p_ratio']:g} | {100 * r['accuracy']:.1f} | {r['gflops']:.4g} | {speed} | {tokens} "
                     f"| {'yes' if front[i] else ''} |")
    return "\n".join(lines)
