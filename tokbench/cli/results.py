"""``tokbench check``, ``report`` and ``plot``: what the stored results say."""

from __future__ import annotations

from pathlib import Path

import click

from tokbench.cli import _split, cli
from tokbench.errors import TokbenchError

# -- check, report, plot -------------------------------------------------------------------

def _echo_lines(lines) -> None:
    for line in lines:
        click.echo(line, err=True)


@cli.command("check")
@click.option("--baseline", type=click.Path(path_type=Path), required=True,
              help="Folder of baseline records (e.g. results/baseline, made by 'tokbench run --smoke').")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True,
              help="Folder (or .jsonl file) of the current records; curated copies in its sub-folders are left out.")
@click.option("--accuracy-tol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Largest allowed accuracy drop per cell (absolute, 0.01 = 1 point); CPU runs are deterministic.")
@click.option("--accuracy-intervals", is_flag=True,
              help="A drop beyond --accuracy-tol to a value inside the baseline cell's 95 % interval is reported, "
                   "not failed (for runs that differ by seed or clips).")
@click.option("--speed-band", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Allowed relative throughput drop, checked only when the device matches.")
@click.option("--no-speed", is_flag=True, help="Do not compare throughput (shared CI machines are noisy).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the Markdown report here.")
@click.option("--update", is_flag=True, help="Rewrite the baseline from the current records instead of checking "
              "(baseline cells the records lack are kept).")
@click.option("--prune", is_flag=True, help="With --update: drop the baseline cells the current records lack.")
def check_cmd(baseline, results_dir, accuracy_tol, accuracy_intervals, speed_band, no_speed, out, update, prune):
    """Compare current results with a baseline, cell by cell (for CI).

    FLOPs, parameters and tokens must match exactly; accuracy may not drop by more than
    --accuracy-tol (with --accuracy-intervals: unless it stays inside the baseline cell's 95 %
    interval); throughput is compared only on the same device. A baseline cell with no
    current record is a regression; new cells are counted. Prints a Markdown table of the
    differences, then (on stderr) which runs, devices and revisions each side holds; exit
    status 1 on a regression, 0 otherwise.

    \b
    Example (what .ci/run does):
      tokbench run --smoke --results /tmp/now
      tokbench check --baseline results/baseline --results /tmp/now --no-speed
      tokbench check --baseline results/baseline --results /tmp/now --update   # accept the new numbers
      tokbench check --baseline results/baseline --results /tmp/now --update --prune   # ... and drop cells not run
    """
    from tokbench.report.check import compare, markdown, write_baseline
    from tokbench.report.selection import select_records
    from tokbench.store import output_file, output_folder

    if out is not None:
        output_file(out, "--out", suffix=".md", make=False)
    if prune and not update:
        raise TokbenchError("--prune only applies with --update")
    if update:
        output_folder(baseline, "--baseline", make=False)
    current, described = select_records(results_dir)
    if not current:
        raise TokbenchError(f"no records under --results {results_dir}: run 'tokbench run' first")
    if update:
        target, written, carried = write_baseline(baseline, current, results=results_dir, prune=prune)
        kept = f" (and {carried} cells of the old baseline that the results do not have)" if carried else ""
        click.echo(f"wrote {written} baseline cells to {target}{kept}")
        _echo_lines(["current: " + line if i == 0 else line for i, line in enumerate(described)])
        return 0
    if not baseline.exists():
        raise TokbenchError(f"--baseline {baseline}: no such folder (make one with --update)")
    reference, base_described = select_records(baseline)
    if not reference:
        raise TokbenchError(f"no records under --baseline {baseline}")
    findings, counts = compare(reference, current, accuracy_tol=accuracy_tol, intervals=accuracy_intervals,
                               speed_band=None if no_speed else speed_band)
    report = markdown(findings, counts)
    click.echo(report, nl=False)
    if out is not None:
        output_file(out, "--out", suffix=".md").write_text(report)
    for side, lines in (("baseline", base_described), ("current", described)):
        _echo_lines([f"{side}: {line}" if i == 0 else line for i, line in enumerate(lines)])
    return 1 if counts["regressions"] else 0


_results_option = click.option(
    "--results", "results_dirs", type=click.Path(path_type=Path), multiple=True, default=[Path("results/runs")],
    show_default=True,
    help="Results folder (searched recursively for *.jsonl) or file; repeatable. The default holds your own runs. "
         "Under a folder, curated copies in sub-folders other than runs/ (results/synthetic, results/baseline under "
         "results) are left out: name them to use them.")


def _result_filters(func):
    """The options that pick a subset of the results (plot, report)."""
    for option in reversed([
        click.option("--datasets", default=None, help="Only these datasets (comma-separated)."),
        click.option("--methods", "methods_", default=None, help="Only these methods (registered names, comma-separated)."),
        click.option("--protocol", default=None, help="Only this protocol (eval, lp or ft)."),
        click.option("--backbone", default=None, help="Only these backbones (comma-separated)."),
        click.option("--run", "runs", default=None,
                     help="Only these runs: run ids or unique prefixes (comma-separated), or 'latest'."),
        click.option("--clips", default=None, help="Only accuracy cells evaluated on this many clips (comma-separated); "
                                                   "needed when a dataset mixes clip counts."),
        click.option("--speed-device", default=None,
                     help="Only throughput measured on this device (its name as printed, e.g. 'AMD EPYC'); the other "
                          "records keep their accuracy and FLOPs."),
    ]):
        func = option(func)
    return func


def _figure_options(func):
    """How the figures look (plot, report)."""
    for option in reversed([
        click.option("--x", "x_axis", type=click.Choice(["gflops", "relative", "log"]), default="gflops",
                     show_default=True, help="GFLOPs axis: linear, relative (% of the full model's GFLOPs) or log."),
        click.option("--highlight", default=None,
                     help="Methods to draw in colour (names or specs, comma-separated); the others grey."),
    ]):
        func = option(func)
    return func


def _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device):
    from tokbench.report.selection import select_results

    try:
        clip_counts = [int(c) for c in _split(clips)] if clips else None
    except ValueError:
        raise TokbenchError(f"--clips {clips!r}: give whole numbers, e.g. --clips 500") from None
    return select_results(list(results_dirs), runs=_split(runs) if runs else None, clips=clip_counts,
                          speed_device=speed_device, dataset=_split(datasets) if datasets else None,
                          method=_split(methods_) if methods_ else None, protocol=(protocol,) if protocol else None,
                          backbone=_split(backbone) if backbone else None)


@cli.command("report")
@_results_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where to write report.md, report.html, their figures and tables/.")
@_result_filters
@_figure_options
@click.option("--budgets", default="10,30,50", show_default=True,
              help="Leaderboard budgets: percents of the full model's GFLOPs (comma-separated).")
@click.option("--viz/--no-viz", default=True, show_default=True,
              help="Draw what each method keeps (tokbench viz) on a clip of --viz-dataset, as one grid.")
@click.option("--viz-dataset", default=None,
              help="Synthetic dataset of the pictures [default: synth-gesture if reported, else the first].")
@click.option("--viz-p-ratio", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="P-Ratio of the pictures (0.5 is reachable by every built-in method on the zoo models).")
def report_cmd(results_dirs, out_dir: Path, datasets, methods_, protocol, backbone, runs, clips, speed_device, x_axis,
               highlight, budgets, viz, viz_dataset, viz_p_ratio) -> None:
    """Write a report as Markdown (report.md) and as one self-contained HTML page
    (report.html, figures embedded): contents, the figures, a leaderboard (the best method
    at 10/30/50 % of the full model's GFLOPs, ties stated), which method Pareto-dominates
    which, speedup at equal accuracy, a grid of what each method keeps on one clip, a
    section per dataset (its figure, method x P tables of accuracy and cost, unreachable
    cells with their reason) and the provenance (runs, commands, clips, seeds, devices,
    revisions). Every table is also written as CSV, Markdown and LaTeX under OUT/tables.
    Prints which records were used (stderr).

    \b
    Example:
      tokbench report                                    # your own runs (results/runs) -> reports/
      tokbench report --results results/synthetic --out reports/synthetic   # the committed report
      tokbench report --highlight lookwhen,lite --x relative --budgets 10,25,50
    """
    from tokbench.report.document import write_report
    from tokbench.report.significance import pooled_with_oracle
    from tokbench.viz import report_grid

    try:
        shares = tuple(float(b) for b in _split(budgets))
    except ValueError:
        raise TokbenchError(f"--budgets {budgets!r}: give percents, e.g. 10,30,50") from None
    selection = _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device)
    frame, better = pooled_with_oracle(selection.frame, results_dirs)
    picture, captions, note = (report_grid(frame, out_dir, dataset=viz_dataset, p_ratio=viz_p_ratio,
                                           progress=lambda line: click.echo(f"viz: {line}", err=True))
                               if viz else (None, [], None))
    path = write_report(frame, out_dir, source=", ".join(map(str, results_dirs)), selection=selection,
                        picture=picture, picture_captions=captions, picture_note=note, budgets=shares, x=x_axis,
                        highlight=_split(highlight) if highlight else (), better=better)
    click.echo(str(path))
    click.echo(str(path.with_suffix(".html")))
    _echo_lines(selection.describe())


@cli.command("plot")
@_results_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where to write the figures (PNG and PDF).")
@_result_filters
@_figure_options
def plot_cmd(results_dirs, out_dir: Path, datasets, methods_, protocol, backbone, runs, clips, speed_device, x_axis,
             highlight) -> None:
    """Draw accuracy vs GFLOPs and accuracy vs throughput (a panel per dataset) and
    throughput vs GFLOPs (per backbone): a line per method through its P-Ratio points, the
    full model as a star, privileged methods (the oracle) dashed, each panel's Pareto front
    in grey, error bars where the records have intervals. Throughput figures are made per
    device. PNG and PDF, sized for a paper. Filters pick a subset of the results; prints
    which records were used (stderr).

    \b
    Example:
      tokbench plot --out reports                        # your own runs (results/runs)
      tokbench plot --methods lookwhen,lite,random,none --datasets synth-gesture,synth-motion
      tokbench plot --results results/synthetic --highlight lookwhen,rlt --x relative
    """
    from tokbench.report.plots import plot_all
    from tokbench.report.selection import newest_per_cell
    from tokbench.report.significance import pool_seeds
    from tokbench.store import output_folder

    output_folder(out_dir, "--out", make=False)
    selection = _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device)
    frame = pool_seeds(newest_per_cell(selection.frame))  # seed variants as one point (no torch here)
    for path in plot_all(frame, out_dir, x=x_axis, highlight=_split(highlight) if highlight else ()):
        click.echo(str(path))
    _echo_lines(selection.describe())


