"""``tokbench report``: a Markdown report of a results folder (figures, dominance summary,
speedup at equal accuracy, selection pictures, per-dataset tables, environment) and the same
page as self-contained HTML. No torch (the pictures are drawn by the caller)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from tokbench.errors import TokbenchError
from tokbench.store import output_folder

__all__ = ["write_report"]


def _environment(df: pd.DataFrame) -> list[str]:
    lines = []
    for column, label in (("env.device_name", "device"), ("env.torch_version", "torch"),
                          ("env.tokbench_version", "tokbench"), ("env.git_revision", "git revision"),
                          ("env.torch_threads", "threads")):
        if column in df.columns:
            values = sorted({str(v) for v in df[column].dropna()})
            lines.append(f"- {label}: {', '.join(values) or '–'}")
    return lines


def write_report(df: pd.DataFrame, out_dir: str | Path, *, source: str = "results",
                 pictures: list[tuple[Path, str]] = (), picture_note: str | None = None) -> Path:
    """Write ``report.md``, the figures it shows and ``report.html`` (the same page,
    self-contained) to ``out_dir``; returns the Markdown path.

    Args:
        pictures: (PNG path in ``out_dir``, caption) of each method's selection picture
            (``tokbench viz``), drawn by the caller since they need the models.
        picture_note: a line about the pictures (which clip, or why there are none).

    Raises:
        TokbenchError: no records with accuracy to report.
    """
    from tokbench.report.analysis import dataset_table, dominance_summary, speedup_at_equal_accuracy
    from tokbench.report.plots import (
        plot_accuracy_vs_gflops,
        plot_accuracy_vs_throughput,
        plot_throughput_vs_gflops,
        with_headline_accuracy,
    )

    out_dir = Path(out_dir)
    if "dataset" not in df.columns or df["dataset"].isna().all():
        raise TokbenchError("the results have no accuracy records: run 'tokbench run' with datasets first")
    cells = df[df["dataset"].notna()]
    ok = with_headline_accuracy(cells[cells["status"] == "ok"])
    # Only unreachable or error cells carry no gflops column at all: nothing to draw or rank,
    # so one line saying so (with what there is) instead of a KeyError or an empty report.
    ok = ok.dropna(subset=["accuracy", "gflops"]) if "gflops" in ok.columns else ok.iloc[:0]
    if ok.empty:
        statuses = cells["status"].fillna("no status").value_counts()
        found = ", ".join(f"{n} {status}" for status, n in statuses.items())
        hint = " (re-run the failed ones with 'tokbench run --retry-failed')" if "error" in statuses or "oom" in statuses else ""
        raise TokbenchError(f"nothing to report: no cell with status ok, accuracy and GFLOPs among the "
                            f"{len(cells)} accuracy cells ({found}){hint}")
    output_folder(out_dir, make=False)  # a file in the way: OutputError now, not suppressed with the figures
    figures = []
    for plot in (plot_accuracy_vs_gflops, plot_accuracy_vs_throughput, plot_throughput_vs_gflops):
        with contextlib.suppress(TokbenchError):  # e.g. no throughput recorded: the report shows what it has
            figures += [p for p in plot(df, out_dir) if p.suffix == ".png"]
    lines = [f"# tokbench report: {source}", "",
             f"{len(ok)} measured cells on {ok['dataset'].nunique()} datasets, {ok['method'].nunique()} methods. "
             "FLOPs in fvcore's convention (1 multiply-add = 1 FLOP), per view; accuracy is each dataset's "
             "headline metric on its evaluation split; privileged methods (reading the label) are marked and "
             "left out of Pareto fronts and dominance.", ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures] + [""]
    lines += ["## Dominance (accuracy vs GFLOPs)", "",
              "A Pareto-dominates B on a panel when every point of B is matched by a point of A that costs no "
              "more GFLOPs and is no less accurate, one of them strictly better.", ""]
    lines += [f"- {s}" for s in dominance_summary(ok)] or ["- no method Pareto-dominates another on any panel"]
    full = ok[ok["method"] == "none"]
    if "clips_per_s" in ok.columns and not full.empty:
        lines += ["", "## Speedup at equal accuracy", "",
                  "Throughput at which each method's accuracy-throughput path reaches the full model's accuracy, "
                  "divided by the full model's throughput (the LookWhen paper's measure); – where it never does.", ""]
        public = ok[~ok.get("privileged", pd.Series(False, index=ok.index)).astype(bool)]
        methods = sorted(m for m in public["method"].unique() if m != "none")
        lines += ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for dataset, panel in ok.groupby("dataset"):
            ref = panel[panel["method"] == "none"].dropna(subset=["clips_per_s"])
            cells = []
            for m in methods:
                s = None if ref.empty else speedup_at_equal_accuracy(panel[panel["method"] == m], ref)
                cells.append("–" if s is None else f"{s:.2f}×")
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    if pictures or picture_note:
        lines += ["", "## What each method keeps", ""]
        lines += [picture_note, ""] if picture_note else []
        for path, text in pictures:
            lines += [f"![{path.stem}]({path.name})", "", text, ""]
    lines += ["", "## Per dataset", ""]
    for dataset, panel in ok.groupby("dataset"):
        metric = panel["accuracy_metric"].dropna().iloc[0]
        lines += [f"### {dataset} ({metric})", "", dataset_table(panel), ""]
    lines += ["## Environment", ""] + _environment(ok) + [""]
    output_folder(out_dir)
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    from tokbench.report.html import write_html

    write_html(path)
    return path
