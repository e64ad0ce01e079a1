"""``tokbench report``: a Markdown report of a results folder and the same page as one
self-contained HTML file. No torch (the selection pictures are drawn by the caller).

The page, in order: what it was built from; contents; the overview figures; the leaderboard
(best method at 10/30/50 % of the full model's GFLOPs, ties stated by their rule); the summary
(which method Pareto-dominates which); speedup at equal accuracy (per throughput device); the
selection pictures as one grid; one section per dataset (its figure, a method x P accuracy
table with the Pareto front in bold and intervals when the records have them, a method x P
cost table, unreachable and failed cells with their reasons); the provenance (sources, runs,
commands, clip counts, seeds, devices, revisions, versions). Every table is also written as
CSV, Markdown and LaTeX under ``tables/``.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tokbench.errors import TokbenchError
from tokbench.report.html import slug
from tokbench.store import output_folder

__all__ = ["write_report", "DEFAULT_BUDGETS"]

DEFAULT_BUDGETS = (10, 30, 50)  # percents of the full model's GFLOPs


def _link(heading: str) -> str:
    return f"[{heading}](#{slug(heading)})"


def _privileged(df: pd.DataFrame) -> pd.Series:
    return df.get("privileged", pd.Series(False, index=df.index)).fillna(False).astype(bool)


def _command_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return shlex.join(str(v) for v in value)
    return str(value)


def _values(df: pd.DataFrame, column: str) -> list[str]:
    """The distinct values of ``column`` as text (integers without ``.0``), sorted."""
    from tokbench.report.tables import number_text

    if column not in df.columns:
        return []
    return sorted({number_text(v) for v in df[column].dropna()})


def _provenance(cells: pd.DataFrame, selection) -> list[str]:
    """The Provenance section: where the records come from and what they were measured with."""
    from tokbench.report.selection import clips_by_dataset, short_revision, speed_flag_counts, speed_label
    from tokbench.report.tables import number_text

    lines = []
    if selection is not None:
        lines += [f"- sources: {', '.join(f'`{s}`' for s in selection.sources)}; {selection.read} records read, "
                  f"{len(selection.frame)} used (the newest record of each cell"
                  + (f"; {selection.superseded} older records of cells measured again not used" if selection.superseded
                     else "") + ")"]
        if selection.left_out:
            lines.append("- left out (curated copies, not named with `--results`): "
                         + ", ".join(f"`{k}` ({n} records)" for k, n in selection.left_out.items()))
    lines += ["", "| run | first record | records | device | revision | command |", "|---|---|---|---|---|---|"]
    runs = cells.groupby("run_id", sort=False) if "run_id" in cells.columns else []
    order = sorted(((min(_values(g, "created_utc"), default=""), str(r), g) for r, g in runs), key=lambda t: t[:2])
    for first, run, rows in order:
        commands = sorted({_command_text(c) for c in rows["command"].dropna()}) if "command" in rows.columns else []
        command = "; ".join(f"`{c}`" for c in commands) or "not recorded"
        lines.append(f"| {run} | {first[:19].replace('T', ' ')} | {len(rows)} | {', '.join(_values(rows, 'env.device_name'))} "
                     f"| {', '.join(short_revision(v) for v in _values(rows, 'env.git_revision')) or '–'} | {command} |")
    lines.append("")
    clips = clips_by_dataset(cells)
    if clips:
        lines += ["| dataset | split | clips per cell | views | protocol | seeds |", "|---|---|---|---|---|---|"]
        for dataset, counts in clips.items():
            rows = cells[cells["dataset"] == dataset]
            lines.append(f"| {dataset} | {', '.join(_values(rows, 'split')) or '–'} | {', '.join(map(str, counts))} "
                         f"| {', '.join(_values(rows, 'views')) or '–'} | {', '.join(_values(rows, 'protocol')) or '–'} "
                         f"| {', '.join(_values(rows, 'seed')) or '–'} |")
        lines.append("")
    seeded = [c for c in cells.columns if c.startswith("method_params.") and c.endswith("seed")]
    method_seeds = sorted({f"{m}: {number_text(v)}" for c in seeded for m, v in zip(cells["method_id"], cells[c])
                           if not pd.isna(v)})
    if method_seeds:
        lines.append(f"- method seeds: {', '.join(method_seeds)}")
    timed = cells[cells["clips_per_s"].notna()] if "clips_per_s" in cells.columns else cells.iloc[:0]
    if not timed.empty:
        lines.append(f"- throughput measured on: {'; '.join(sorted(set(speed_label(timed))))}")
        flagged = speed_flag_counts(cells)
        if flagged:
            lines.append("- throughput flagged (`speed_flags`, not comparable): "
                         + ", ".join(f"{n} cells {flag}" for flag, n in flagged.items()))
    for column, label in (("env.device_name", "devices"), ("env.git_revision", "git revisions"),
                          ("env.torch_version", "torch"), ("env.tokbench_version", "tokbench"),
                          ("env.torch_threads", "threads"), ("env.python", "python")):
        values = _values(cells, column)
        if values:
            shown = [short_revision(v) for v in values] if column == "env.git_revision" else values
            lines.append(f"- {label}: {', '.join(shown)}")
    return lines


def _speedup(ok: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(device label, table) of speedup at equal accuracy, one table per throughput device."""
    from tokbench.report.analysis import speedup_at_equal_accuracy
    from tokbench.report.selection import speed_label

    if "clips_per_s" not in ok.columns:
        return []
    timed = ok[ok["clips_per_s"].notna()]
    if timed.empty:
        return []
    timed = timed.assign(_device=speed_label(timed))
    public = timed[~_privileged(timed)]
    out = []
    for device, rows in public.groupby("_device", sort=True):
        methods = sorted(m for m in rows["method"].unique() if m != "none")
        table = []
        for dataset, panel in rows.groupby("dataset", sort=True):
            ref = panel[panel["method"] == "none"]
            if ref.empty:
                continue
            row = {"dataset": dataset}
            for m in methods:
                s = speedup_at_equal_accuracy(panel[panel["method"] == m], ref) if (panel["method"] == m).any() else None
                row[m] = "–" if s is None else f"{s:.2f}×"
            table.append(row)
        if table:
            out.append((str(device), pd.DataFrame(table, columns=["dataset", *methods])))
    return out


def _summary(ok: pd.DataFrame, better) -> tuple[str, list[str]]:
    """(heading, lines) of the summary: significance-aware when ``better`` is given."""
    from tokbench.report.analysis import (
        dominance_summary,
        significance_summary,
        significant_panels,
        significant_wins,
        unsupported_claims,
    )

    if better is not None:
        verdict = significant_panels(ok, better)
        claims, ties = significance_summary(ok, better, verdict=verdict)
        lines = ["Claims that a paired test on the stored predictions supports at 95 %: A Pareto-dominates B on a "
                 "panel when every point of B is matched by a point of A that costs no more GFLOPs, none of B's points "
                 "is significantly better than its match, and one match is significantly better.", ""]
        lines += [f"- {c}" for c in claims] or ["- no method significantly Pareto-dominates another on any panel"]
        if ties:
            lines += ["", "Indistinguishable within the noise:", ""] + [f"- {t}" for t in ties]
        unsupported = unsupported_claims(ok, significant_wins(verdict))
        if unsupported:
            lines += ["", "Point-estimate claims the paired test does not support, on the panels named (there the win "
                      "is smaller than the noise):", ""] + [f"- {c}" for c in unsupported]
        return "Summary (paired test, 95 %)", lines
    # The significance-aware summary replaces this one when the caller passes ``better``
    # (tokbench.report.analysis.significance_summary with a paired-bootstrap oracle).
    lines = ["Point estimates, no significance test: A Pareto-dominates B on a panel when every point of B is "
             "matched by a point of A that costs no more GFLOPs and is no less accurate, one of them strictly "
             "better. A difference smaller than the evaluation's noise counts here as a win.", ""]
    lines += [f"- {s}" for s in dominance_summary(ok)] or ["- no method Pareto-dominates another on any panel"]
    return "Summary (point estimates, no significance test)", lines


def _table_links(stem: str) -> str:
    return f"(as [CSV](tables/{stem}.csv), [Markdown](tables/{stem}.md), [LaTeX](tables/{stem}.tex))"


def write_report(df: pd.DataFrame, out_dir: str | Path, *, source: str = "results", selection=None,
                 picture: Path | None = None, picture_captions: Sequence[str] = (), picture_note: str | None = None,
                 better=None, budgets: Sequence[float] = DEFAULT_BUDGETS, x: str = "gflops",
                 highlight: Sequence[str] = ()) -> Path:
    """Write ``report.md``, its figures, ``tables/`` and ``report.html`` (the same page,
    self-contained) to ``out_dir``; returns the Markdown path.

    Args:
        df: results, one row per cell (e.g. ``Selection.frame``; repeated cells count as their newest).
        source: what the records are (the title).
        selection: the :class:`tokbench.report.selection.Selection` they came from (provenance).
        picture: the selection pictures' grid PNG in ``out_dir`` (drawn by the caller:
            they need the models), with one caption per method and a note (which clip, or
            why there is none).
        better: ``better(p, q)``, whether point p is significantly more accurate than q (a
            paired test); with it the summary keeps only significant claims
            (:func:`tokbench.report.analysis.significance_summary`), without it the
            summary is labelled "point estimates, no significance test".
        budgets: the leaderboard's budgets, percents of the full model's GFLOPs.
        x, highlight: as :func:`tokbench.report.plots.plot_accuracy_vs_gflops`.

    Raises:
        TokbenchError: no records with accuracy to report.
    """
    from tokbench.report.plots import (
        plot_accuracy_per_dataset,
        plot_accuracy_vs_gflops,
        plot_accuracy_vs_throughput,
        plot_throughput_vs_gflops,
    )
    from tokbench.report.selection import newest_per_cell
    from tokbench.report.tables import (
        best_at_budget,
        headline_accuracy,
        leaderboard_grid,
        method_grid,
        pareto_front,
        write_table,
    )

    out_dir = Path(out_dir)
    if "dataset" not in df.columns or df["dataset"].isna().all():
        raise TokbenchError("the results have no accuracy records: run 'tokbench run' with datasets first")
    df = newest_per_cell(df)
    cells = df[df["dataset"].notna()]
    ok = headline_accuracy(cells[cells["status"] == "ok"])
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
            figures += [p for p in plot(df, out_dir, x=x, highlight=highlight) if p.suffix == ".png"]
    per_dataset = plot_accuracy_per_dataset(df, out_dir, x=x, highlight=highlight)
    tables = out_dir / "tables"
    datasets = sorted(ok["dataset"].unique())
    unreached = cells[cells["status"] != "ok"]

    # -- head and contents ----------------------------------------------------------------
    runs = cells["run_id"].nunique() if "run_id" in cells.columns else 0
    lines = [f"# tokbench report: {source}", "",
             f"{len(ok)} measured cells on {len(datasets)} datasets, {ok['method_id'].nunique()} method specs"
             + (f", {len(unreached)} cells unreachable or failed (shown in the tables with the reason)"
                if len(unreached) else "")
             + f", from {runs} run{'s' if runs != 1 else ''} (see {_link('Provenance')}). FLOPs in fvcore's convention "
             "(1 multiply-add = 1 FLOP), per view; accuracy is each dataset's headline metric on its evaluation "
             "split; privileged methods (reading the label) are marked and left out of Pareto fronts, the "
             "leaderboard and the summary.", ""]
    speedups = _speedup(ok)
    heading, summary = _summary(ok, better)
    contents = ["Figures", "Leaderboard", heading] + (["Speedup at equal accuracy"] if speedups else [])
    contents += ["What each method keeps"] if picture or picture_note else []
    contents += ["Per dataset", "Provenance"]
    lines += ["## Contents", ""] + [f"- {_link(h)}" + (": " + ", ".join(_link(f"{d} ({_metric(ok, d)})") for d in datasets)
                                                      if h == "Per dataset" else "") for h in contents] + [""]

    # -- figures ----------------------------------------------------------------------------
    lines += ["## Figures", ""]
    lines += [f"![{p.stem}]({p.name})" for p in figures] + ["", "Each figure is also written as PDF beside its PNG.", ""]

    # -- leaderboard ------------------------------------------------------------------------
    best = best_at_budget(df, budgets)
    lines += ["## Leaderboard", ""]
    if best.empty:
        lines += ["No panel has a full-model record (method `none`), so no budget can be set.", ""]
    else:
        rule = best["tie_rule"].iloc[0]
        lines += ["The most accurate non-privileged method within each budget (GFLOPs per view at most that share of "
                  "the panel's full model), with its accuracy (%), P-Ratio and actual share of the full model's GFLOPs. "
                  f"Ties (`=`): {rule}. {_table_links('leaderboard')}", ""]
        grid = leaderboard_grid(best)
        lines += [_markdown(grid), ""]
        write_table(tables, "leaderboard", grid, raw=best, caption="Best method at a GFLOPs budget (% of the full model)")
        missing = sorted(set(datasets) - set(best["dataset"]))
        if missing:
            lines += [f"Not ranked (no full-model record): {', '.join(missing)}.", ""]
    front = pareto_front(df)
    if not front.empty:
        write_table(tables, "pareto_front", front.assign(accuracy=(100 * front["accuracy"]).round(2)),
                    raw=front, caption="Accuracy-GFLOPs Pareto front per panel (non-privileged points)")
        lines += [f"The accuracy-GFLOPs Pareto front of every panel is in bold in the per-dataset tables "
                  f"{_table_links('pareto_front')}.", ""]

    # -- summary ----------------------------------------------------------------------------
    lines += [f"## {heading}", ""] + summary + [""]

    # -- speedup ----------------------------------------------------------------------------
    if speedups:
        lines += ["## Speedup at equal accuracy", "",
                  "Throughput at which each method's accuracy-throughput path reaches the full model's accuracy, "
                  "divided by the full model's throughput (the LookWhen paper's measure); – where it never does. "
                  "Throughputs of different devices are never compared.", ""]
        for k, (device, table) in enumerate(speedups):
            stem = "speedup" if len(speedups) == 1 else f"speedup_{k + 1}"
            lines += [f"On {device} {_table_links(stem)}:", "", _markdown(table), ""]
            write_table(tables, stem, table, caption=f"Speedup at equal accuracy on {device}")

    # -- pictures ---------------------------------------------------------------------------
    if picture or picture_note:
        lines += ["## What each method keeps", ""]
        lines += [picture_note, ""] if picture_note else []
        if picture:
            lines += [f"![{Path(picture).stem}]({Path(picture).name})", ""]
            lines += [f"- {c}" for c in picture_captions] + [""]

    # -- per dataset ------------------------------------------------------------------------
    lines += ["## Per dataset", "",
              "Accuracy in %, ± the half-width of the records' interval when they have one; **bold**: on the "
              "dataset's accuracy-GFLOPs Pareto front (non-privileged points). Cost: GFLOPs per view / clips per "
              "second. Unreachable and failed cells are marked with their reason under the table.", ""]
    for dataset in datasets:
        metric = _metric(ok, dataset)
        panel = cells[cells["dataset"] == dataset]
        name = re.sub(r"[^A-Za-z0-9+._-]+", "-", dataset).lower()
        lines += [f"### {dataset} ({metric})", ""] + _card_lines(dataset)
        for path in per_dataset.get(dataset, []):
            if path.suffix == ".png":
                lines += [f"![{path.stem}]({path.name})", ""]
        shown, raw, notes = method_grid(panel, "accuracy")
        lines += [f"{metric} (%) {_table_links(name + '_accuracy')}:", "", _markdown(shown), ""]
        lines += [f"- {n}" for n in _numbered(notes)] + ([""] if notes else [])
        write_table(tables, f"{name}_accuracy", shown, raw=raw, caption=f"{dataset}: {metric} (%)", notes=_numbered(notes))
        cost, cost_raw, cost_notes = method_grid(panel, "cost")
        devices = [n for n in cost_notes if n.startswith("(")]  # which device each clips/s comes from
        lines += [f"GFLOPs per view / clips per second {_table_links(name + '_cost')}:", "", _markdown(cost), ""]
        lines += [f"- {n}" for n in devices] + ([""] if devices else [])
        write_table(tables, f"{name}_cost", cost, raw=cost_raw, caption=f"{dataset}: GFLOPs per view / clips per second",
                    notes=devices)

    # -- provenance -------------------------------------------------------------------------
    lines += ["## Provenance", ""] + _provenance(cells, selection) + [""]
    output_folder(out_dir)
    _cells_csv(cells, tables)
    lines += ["Every cell used, one row each: [tables/cells.csv](tables/cells.csv).", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    from tokbench.report.html import write_html

    write_html(path)
    return path


def _card_lines(dataset: str) -> list[str]:
    """What the dataset's card says (what decides the label, what it stresses, its notes),
    for a registered dataset; nothing for one this process does not know (a plug-in's)."""
    from tokbench.data import DATASETS

    if dataset not in DATASETS:
        return []
    card = DATASETS.get(dataset).card
    facts = [("Decides", card.decides), ("Stresses", card.stresses), ("Notes", card.notes)]
    return [f"- {name}: {text}" for name, text in facts if text] + [""]


def _metric(ok: pd.DataFrame, dataset: str) -> str:
    return str(ok.loc[ok["dataset"] == dataset, "accuracy_metric"].dropna().iloc[0])


def _numbered(notes: list[str]) -> list[str]:
    return [f"[{i}] {n}" for i, n in enumerate(notes, 1)]


def _markdown(frame: pd.DataFrame) -> str:
    from tokbench.report.tables import markdown_table

    return markdown_table(frame)


CELL_COLUMNS = ["dataset", "backbone", "method_id", "p_ratio", "status", "accuracy_metric", "accuracy", "accuracy_lo",
                "accuracy_hi", "gflops", "clips_per_s", "clips_per_s_lo", "clips_per_s_hi", "tokens_kept", "clips",
                "seed", "protocol", "privileged", "run_id", "cell_id", "error"]


def _cells_csv(cells: pd.DataFrame, tables: Path) -> Path:
    from tokbench.report.tables import headline_accuracy

    frame = headline_accuracy(cells)
    frame = frame[[c for c in CELL_COLUMNS if c in frame.columns]].sort_values(["dataset", "method_id", "p_ratio"])
    output_folder(tables)
    path = tables / "cells.csv"
    frame.to_csv(path, index=False, float_format="%.10g")
    return path
