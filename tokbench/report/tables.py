"""Tables of a results DataFrame: headline accuracy, Pareto fronts, the best method at a FLOP
budget, method x P grids, and their export as CSV, Markdown and LaTeX. Pure functions (no torch).

Every function takes the frame :func:`tokbench.load_results` returns, as it is: rows with
another status are left out where a number is needed, and a folder holding repeated runs
counts each cell once (its newest record, :func:`tokbench.report.selection.newest_per_cell`).

A **panel** is one dataset on one backbone; the **full model** is its ``none`` record, and a
budget is a share of its GFLOPs (fvcore convention, per view).

    >>> import tokbench
    >>> df = tokbench.load_results("results/synthetic")
    >>> tokbench.best_at_budget(df, budgets=(10, 30, 50))      # one row per dataset and budget
    >>> tokbench.pareto_front(df)                              # the non-privileged front per panel
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tokbench.errors import TokbenchError

__all__ = ["HEADLINE_METRICS", "headline_accuracy", "pareto_front", "best_at_budget", "leaderboard_grid",
           "full_model_gflops", "method_grid", "number_text", "markdown_table", "latex_table", "write_table",
           "TIE_RULE_INTERVALS", "TIE_RULE_EXACT"]

HEADLINE_METRICS = ("top1", "mAP", "action_top1")  # single-label, multi-label, verb+noun
PANEL = ["dataset", "backbone"]
TIE_RULE_INTERVALS = "a method ties with the leader when its accuracy interval (from the records) overlaps the leader's"
TIE_RULE_EXACT = ("the records have no accuracy intervals, so only exactly equal accuracies tie; a lead smaller than "
                  "the evaluation's noise still shows as a lead")


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    from tokbench.report.selection import newest_per_cell

    return newest_per_cell(df)


def headline_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each row's headline metric (the first of top1, mAP, action_top1 it has) as
    ``accuracy`` (a fraction), its name as ``accuracy_metric``, and its interval as
    ``accuracy_lo``/``accuracy_hi`` (from ``<metric>_lo``/``<metric>_hi``; NaN when the
    records have none). The rows and index are those of ``df``."""
    acc = pd.Series(float("nan"), index=df.index)
    lo = pd.Series(float("nan"), index=df.index)
    hi = pd.Series(float("nan"), index=df.index)
    name = pd.Series(None, index=df.index, dtype=object)
    for metric in HEADLINE_METRICS:
        if metric in df.columns:
            take = (acc.isna() & df[metric].notna()).to_numpy()
            acc[take] = df.loc[take, metric].astype(float).to_numpy()
            name[take] = metric
            for bound, out in (("lo", lo), ("hi", hi)):
                column = f"{metric}_{bound}"
                if column in df.columns:
                    out[take] = pd.to_numeric(df.loc[take, column], errors="coerce").to_numpy()
    return df.assign(accuracy=acc, accuracy_metric=name, accuracy_lo=lo, accuracy_hi=hi)


def _ok_points(df: pd.DataFrame, *, x: str = "gflops") -> pd.DataFrame:
    """Newest record per cell, status ok, with accuracy and ``x``; privileged as a bool column."""
    cells = _cells(df)
    if "status" in cells.columns:
        cells = cells[cells["status"] == "ok"]
    if "dataset" in cells.columns:
        cells = cells[cells["dataset"].notna()]
    else:
        cells = cells.iloc[:0].assign(dataset=None)
    cells = headline_accuracy(cells)
    if x not in cells.columns:
        return cells.iloc[:0]
    cells = cells.dropna(subset=["accuracy", x])
    privileged = cells["privileged"] if "privileged" in cells.columns else pd.Series(False, index=cells.index)
    cells = cells.assign(privileged=privileged.fillna(False).astype(bool))
    if "backbone" not in cells.columns:
        cells = cells.assign(backbone="")
    if "method_id" not in cells.columns:
        cells = cells.assign(method_id=cells["method"])
    return cells.reset_index(drop=True)


def full_model_gflops(df: pd.DataFrame) -> dict[tuple[str, str], float]:
    """{(dataset, backbone): the full model's (``none``) GFLOPs per view} of each panel that has one."""
    points = _ok_points(df)
    full = points[points["method"] == "none"]
    return {(str(d), str(b)): float(g["gflops"].mean()) for (d, b), g in full.groupby(PANEL, sort=True)}


def pareto_front(df: pd.DataFrame, *, x: str = "gflops") -> pd.DataFrame:
    """The accuracy-cost Pareto front of each panel, over the non-privileged points (the full
    model included): the points no other point beats on both cost and accuracy.

    Args:
        df: results (:func:`tokbench.load_results`).
        x: the cost column: ``gflops`` (lower is cheaper) or ``clips_per_s`` (higher is cheaper).

    Returns:
        One row per front point with ``dataset, backbone, method_id, p_ratio, <x>, accuracy,
        accuracy_metric`` (and the interval columns), sorted by panel and cost.
    """
    from tokbench.report.pareto import pareto_mask

    if x not in ("gflops", "clips_per_s"):
        raise TokbenchError(f"pareto_front: x must be 'gflops' or 'clips_per_s', not {x!r}")
    points = _ok_points(df, x=x)
    points = points[~points["privileged"]]
    parts = []
    for _, panel in points.groupby(PANEL, sort=True):
        cost = -panel[x] if x == "clips_per_s" else panel[x]
        parts.append(panel[pareto_mask(cost, panel["accuracy"]).to_numpy()].sort_values(x, ascending=x != "clips_per_s"))
    columns = [*PANEL, "method", "method_id", "p_ratio", x, "accuracy", "accuracy_metric", "accuracy_lo", "accuracy_hi"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _has_interval(row: pd.Series) -> bool:
    return not (pd.isna(row.get("accuracy_lo")) or pd.isna(row.get("accuracy_hi")))


def _tied(leader: pd.Series, other: pd.Series, intervals: bool) -> bool:
    if intervals:
        return bool(other["accuracy_hi"] >= leader["accuracy_lo"] and leader["accuracy_hi"] >= other["accuracy_lo"])
    return bool(other["accuracy"] == leader["accuracy"])


def best_at_budget(df: pd.DataFrame, budgets: Sequence[float] = (10, 30, 50)) -> pd.DataFrame:
    """The most accurate method of each panel within each FLOP budget.

    A budget ``b`` (percent) admits the non-privileged points with GFLOPs at most ``b`` % of
    the panel's full model (``none``); each method counts with its most accurate admitted
    point, and the most accurate method leads. **Ties:** when the records have accuracy
    intervals (``<metric>_lo``/``<metric>_hi``), every method whose interval overlaps the
    leader's ties with it; without intervals only exactly equal accuracies tie. Panels without
    a full-model record are left out (no budget can be set); so are budgets no point fits
    (``method_id`` is then empty).

    Args:
        df: results (:func:`tokbench.load_results`), repeated runs allowed.
        budgets: percents of the full model's GFLOPs, each in (0, 100].

    Returns:
        One row per (panel, budget): ``dataset, backbone, accuracy_metric, budget_pct,
        method_id, p_ratio, gflops, gflops_pct, accuracy, accuracy_lo, accuracy_hi, tied_with``
        (the tied methods, comma-separated, best first), ``tie_rule``, ``candidates`` (methods
        with a point in the budget).

    Raises:
        TokbenchError: a budget outside (0, 100].
    """
    bad = [b for b in budgets if not (isinstance(b, (int, float)) and 0 < b <= 100)]
    if bad:
        raise TokbenchError(f"budget {bad[0]!r} is not a percent of the full model's GFLOPs in (0, 100]")
    points = _ok_points(df)
    full = full_model_gflops(df)
    rows = []
    for (dataset, backbone), panel in points[~points["privileged"]].groupby(PANEL, sort=True):
        reference = full.get((str(dataset), str(backbone)))
        if reference is None:
            continue
        metric = panel["accuracy_metric"].dropna().iloc[0]
        intervals = panel.apply(_has_interval, axis=1).all()
        for budget in budgets:
            admitted = panel[panel["gflops"] <= budget / 100 * reference * (1 + 1e-9)]
            row = {"dataset": dataset, "backbone": backbone, "accuracy_metric": metric, "budget_pct": budget,
                   "method_id": "", "p_ratio": float("nan"), "gflops": float("nan"), "gflops_pct": float("nan"),
                   "accuracy": float("nan"), "accuracy_lo": float("nan"), "accuracy_hi": float("nan"), "tied_with": "",
                   "tie_rule": TIE_RULE_INTERVALS if intervals else TIE_RULE_EXACT, "candidates": 0}
            if not admitted.empty:
                # Each method's best admitted point (the cheaper on equal accuracy), best method first.
                best = (admitted.sort_values(["accuracy", "gflops", "method_id"], ascending=[False, True, True],
                                             kind="stable")
                        .drop_duplicates("method_id"))
                leader = best.iloc[0]
                tied = [r["method_id"] for _, r in best.iloc[1:].iterrows() if _tied(leader, r, intervals)]
                row.update(method_id=leader["method_id"], p_ratio=float(leader["p_ratio"]), gflops=float(leader["gflops"]),
                           gflops_pct=100 * float(leader["gflops"]) / reference, accuracy=float(leader["accuracy"]),
                           accuracy_lo=float(leader["accuracy_lo"]), accuracy_hi=float(leader["accuracy_hi"]),
                           tied_with=", ".join(tied), candidates=len(best))
            rows.append(row)
    columns = ["dataset", "backbone", "accuracy_metric", "budget_pct", "method_id", "p_ratio", "gflops", "gflops_pct",
               "accuracy", "accuracy_lo", "accuracy_hi", "tied_with", "tie_rule", "candidates"]
    return pd.DataFrame(rows, columns=columns)


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _accuracy_text(row: pd.Series) -> str:
    text = _percent(row["accuracy"])
    if not pd.isna(row.get("accuracy_lo")) and not pd.isna(row.get("accuracy_hi")):
        text += f" ± {100 * (row['accuracy_hi'] - row['accuracy_lo']) / 2:.1f}"
    return text


def leaderboard_grid(best: pd.DataFrame) -> pd.DataFrame:
    """The display form of :func:`best_at_budget`: a row per panel, a column per budget,
    each cell "**leader** accuracy (P, % of the full model's GFLOPs)" followed by the methods
    tied with it after "=" ("–" when nothing fits the budget)."""
    several = best["backbone"].nunique() > 1
    rows = []
    for (dataset, backbone), panel in best.groupby(PANEL, sort=True):
        name = f"{dataset} ({panel['accuracy_metric'].iloc[0]})" + (f" [{backbone}]" if several else "")
        row = {"dataset": name}
        for _, r in panel.iterrows():
            if not r["method_id"]:
                cell = "–"
            else:
                cell = f"**{r['method_id']}** {_accuracy_text(r)} (P {r['p_ratio']:g}, {r['gflops_pct']:.0f} %)"
                if r["tied_with"]:
                    cell += " = " + ", ".join(f"**{m}**" for m in r["tied_with"].split(", "))
            row[f"≤ {number_text(r['budget_pct'])} % GFLOPs"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def method_grid(panel: pd.DataFrame, value: str = "accuracy") -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """One dataset's method x P grid, for the report's compact tables.

    Args:
        panel: the dataset's records (any status; the newest record per cell is used).
        value: ``accuracy`` (percent, "± half-width" when the records have intervals; points on
            the non-privileged Pareto front in bold) or ``cost`` ("GFLOPs / clips/s"; when the
            throughputs come from several devices or batch sizes, each says which, "(A)", with
            a note per device).

    Returns:
        (display grid: a row per method, a column per P, text cells; raw grid: the same cells
        as numbers (accuracy in percent, GFLOPs) or the status of a cell that has none;
        footnotes: why a cell is unreachable or failed, numbered as the cells mark them).
    """
    from tokbench.report.pareto import pareto_mask

    cells = headline_accuracy(_cells(panel))
    if "method_id" not in cells.columns:
        cells = cells.assign(method_id=cells["method"])
    ok = cells[(cells["status"] == "ok") & cells["accuracy"].notna()] if "status" in cells.columns else cells
    front = set()
    if value == "accuracy" and "gflops" in ok.columns:
        public = ok[~ok.get("privileged", pd.Series(False, index=ok.index)).fillna(False).astype(bool)]
        public = public.dropna(subset=["gflops"])
        if not public.empty:
            front = set(public.index[pareto_mask(public["gflops"], public["accuracy"]).to_numpy()])
    devices, letters = pd.Series("", index=cells.index, dtype=object), {}
    if value == "cost" and "clips_per_s" in cells.columns:
        from tokbench.report.selection import speed_label

        timed = cells["clips_per_s"].notna()
        labels = speed_label(cells[timed])
        letters = {label: chr(ord("A") + i) for i, label in enumerate(sorted(set(labels)))}
        devices[timed] = labels.map(letters)
    ratios = sorted({float(p) for p in cells["p_ratio"].dropna()})
    columns = [f"P {p:g}" for p in ratios]
    notes: list[str] = []
    note_of: dict[tuple[str, str], int] = {}
    display, raw = [], []
    privileged = {m for m, g in cells.groupby("method_id") if bool(g.get("privileged", pd.Series([False])).fillna(False).any())}
    for method in sorted(cells["method_id"].dropna().unique(), key=lambda m: (m == "none", m)):
        name = method + (" (privileged)" if method in privileged else "")
        shown, numbers = {"method": name}, {"method": method}
        rows = cells[cells["method_id"] == method]
        failed = rows[rows["status"] != "ok"] if "status" in rows.columns else rows.iloc[:0]
        for status, group in failed.groupby("status", sort=True):
            key = (method, str(status))
            if key not in note_of:
                note_of[key] = len(notes) + 1
                notes.append(_failure_note(method, str(status), group))
        for p, column in zip(ratios, columns):
            at = rows[rows["p_ratio"] == p]
            if at.empty:
                shown[column], numbers[column] = "", ""
                continue
            r = at.iloc[-1]
            if r.get("status", "ok") != "ok":
                mark = note_of[(method, str(r["status"]))]
                shown[column], numbers[column] = f"{r['status']} [{mark}]", str(r["status"])
            elif value == "accuracy":
                text = _accuracy_text(r) if not pd.isna(r["accuracy"]) else "–"
                shown[column] = f"**{text}**" if r.name in front else text
                numbers[column] = round(100 * r["accuracy"], 4) if not pd.isna(r["accuracy"]) else ""
            else:
                gflops = r.get("gflops")
                speed = r.get("clips_per_s")
                timed = speed is not None and not pd.isna(speed)
                device = f" ({devices[r.name]})" if timed and len(letters) > 1 else ""
                shown[column] = (("–" if pd.isna(gflops) else f"{gflops:.3g}") + " / "
                                 + (f"{speed:.0f}{device}" if timed else "–"))
                numbers[column] = "" if pd.isna(gflops) else float(gflops)
        display.append(shown)
        raw.append(numbers)
    if len(letters) > 1:  # throughputs of several devices: each says where it was measured
        notes += [f"({letter}) clips/s measured on {label}" for label, letter in letters.items()]
    return pd.DataFrame(display, columns=["method", *columns]), pd.DataFrame(raw, columns=["method", *columns]), notes


def _failure_note(method: str, status: str, group: pd.DataFrame) -> str:
    ratios = sorted(float(p) for p in group["p_ratio"].dropna())
    messages = [str(m) for m in group.sort_values("p_ratio")["error"].fillna("no message")] if "error" in group else []
    messages = [m[len(method) + 2:] if m.startswith(f"{method}: ") else m for m in messages]
    first = messages[0] if messages else "no message"
    alike = len({re.sub(r"[0-9.]+", "#", m) for m in messages}) <= 1
    where = ", ".join(f"{p:g}" for p in ratios)
    text = f"{method} {status} at P = {where}: {first}"
    if len(messages) > 1:
        text += " (the same at the other P, with its own numbers)" if alike else "; " + "; ".join(messages[1:])
    return text


# -- text and export ---------------------------------------------------------------------

def number_text(value) -> str:
    """A cell value as text: integers (also ``1568.0``) without a decimal point, other floats
    with up to 4 significant digits, NaN/None as empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def _csv_value(value):
    if isinstance(value, float):
        return "" if math.isnan(value) else (str(int(value)) if value.is_integer() else format(value, ".10g"))
    return "" if value is None else value


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table: the header, then a row per frame row (``|`` in cells escaped)."""
    def cell(v) -> str:
        return number_text(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "≤": r"$\le$",
          "–": "--", "×": r"$\times$"}


def _latex_text(value) -> str:
    text = number_text(value)
    parts = re.split(r"(\*\*.+?\*\*)", text)
    out = []
    for part in parts:
        bold = part.startswith("**") and part.endswith("**") and len(part) > 4
        body = "".join(_LATEX.get(ch, ch) for ch in (part[2:-2] if bold else part))
        out.append(f"\\textbf{{{body}}}" if bold else body)
    return "".join(out)


def latex_table(frame: pd.DataFrame, caption: str = "") -> str:
    """A booktabs ``tabular`` (in a ``table`` with ``caption``): first column left, the
    others right; **bold** cells become ``\\textbf``."""
    spec = "l" + "r" * (len(frame.columns) - 1)
    lines = ["\\begin{table}[t]", "\\centering", "\\small"]
    if caption:
        lines.append(f"\\caption{{{_latex_text(caption)}}}")
    lines += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(_latex_text(c) for c in frame.columns) + r" \\",
              "\\midrule"]
    lines += [" & ".join(_latex_text(v) for v in row) + r" \\" for row in frame.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)


def write_table(out_dir: str | Path, stem: str, display: pd.DataFrame, *, raw: pd.DataFrame | None = None,
                caption: str = "", notes: Sequence[str] = ()) -> list[Path]:
    """Write one table as ``stem.csv`` (``raw``: numbers, else ``display``), ``stem.md``
    and ``stem.tex`` (``display``, with ``caption`` and ``notes`` under it) in ``out_dir``."""
    from tokbench.store import output_folder

    out_dir = output_folder(out_dir)
    paths = [out_dir / f"{stem}.{suffix}" for suffix in ("csv", "md", "tex")]
    with open(paths[0], "w", newline="", encoding="utf-8") as f:
        table = raw if raw is not None else display
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows([[_csv_value(v) for v in row] for row in table.itertuples(index=False)])
    md = ([caption, ""] if caption else []) + [markdown_table(display)] + (["", *[f"{n}  " for n in notes]] if notes else [])
    paths[1].write_text("\n".join(md) + "\n", encoding="utf-8")
    tex = latex_table(display, caption)
    if notes:
        tex += "% " + "\n% ".join(notes) + "\n"
    paths[2].write_text(tex, encoding="utf-8")
    return paths
