"""Figures from results DataFrames (matplotlib/seaborn, Agg backend, no torch).

Every figure puts **measured** cost on the x-axis and states the FLOP convention on it;
P-Ratio is only the label of the points along a method's line. The figures are sized for a
paper (7 in for the six-panel figure, 3.4 in, one column, for one panel) with 6-8 pt text,
and written as PNG and PDF.

- **Styles.** Each method keeps one colour and marker across every figure (:func:`method_style`);
  variants of one method (``random``, ``random(seed=1)``) share its colour family with their
  own line style and hollow markers (:func:`line_styles`); privileged methods are dashed.
- **P labels** are printed only where they collide with no other label and no marker
  (:func:`place_labels`); with ``highlight``, only the highlighted methods are labelled.
- **highlight**: the named methods in colour, every other method thin and grey.
- **x**: ``gflops`` (linear), ``log`` (log scale) or ``relative`` (% of the panel's full
  model, the ``none`` record).
- **Intervals**: with ``<metric>_lo``/``<metric>_hi`` (accuracy) or ``clips_per_s_lo``/``_hi``
  columns, error bars; nothing when the records have none.
- **Throughput** is never drawn across devices: throughput figures are made per device and
  batch size (:func:`tokbench.report.selection.speed_label`).
- Legends sit outside the axes (below), titles are wrapped to the figure's width.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tokbench.errors import TokbenchError  # noqa: E402
from tokbench.report.tables import HEADLINE_METRICS, headline_accuracy  # noqa: E402

__all__ = ["plot_all", "plot_throughput_vs_gflops", "plot_accuracy_vs_gflops", "plot_accuracy_vs_throughput",
           "plot_accuracy_per_dataset", "accuracy_figure", "throughput_figure", "method_style", "line_styles",
           "place_labels", "GFLOPS_AXIS", "RELATIVE_AXIS", "X_MODES", "HEADLINE_METRICS", "with_headline_accuracy"]

GFLOPS_AXIS = "GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP)"
RELATIVE_AXIS = "GFLOPs per view, % of the full model (fvcore)"
THROUGHPUT_AXIS = "throughput (clips/s)"
X_MODES = ("gflops", "relative", "log")
FULL_METHODS = ("none",)
FULL_WIDTH, COLUMN_WIDTH = 7.0, 3.4  # inches: a two-column paper's text and column widths
DPI = 200
GREY = "0.72"

#: The look of every figure: small type that stays readable at the printed size.
PAPER_RC = {
    "font.size": 7, "axes.titlesize": 8, "axes.labelsize": 7, "xtick.labelsize": 6.5, "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5, "legend.title_fontsize": 6.5, "figure.titlesize": 8.5, "lines.linewidth": 1.1,
    "lines.markersize": 3.2, "axes.linewidth": 0.6, "grid.linewidth": 0.4, "xtick.major.width": 0.6,
    "ytick.major.width": 0.6, "savefig.dpi": DPI, "pdf.fonttype": 42,
}

# Fixed per-method styles so a method looks the same in every figure; unknown methods
# get the remaining colours in name order.
_KNOWN = ["none", "random", "tome", "vid_tldr", "rlt", "motion", "attention", "oracle", "lite", "lite++", "lookwhen"]
_MARKERS = ["*", "o", "s", "D", "^", "v", "P", "X", "<", ">", "h", "p", "8"]
_VARIANT_DASHES = [(0, (4, 1.5)), (0, (1, 1.2)), (0, (5, 1.2, 1, 1.2)), (0, (2.5, 2.5))]


def with_headline_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Deprecated name of :func:`tokbench.report.tables.headline_accuracy`."""
    return headline_accuracy(df)


@contextmanager
def _paper_style():
    with plt.rc_context(PAPER_RC):
        yield


def method_style(method: str) -> dict:
    """Colour and marker of a method (stable across figures and runs)."""
    import seaborn as sns

    palette = sns.color_palette("tab10") + sns.color_palette("Dark2")  # 18 distinct, saturated
    n = len(palette)
    i = _KNOWN.index(method) if method in _KNOWN else len(_KNOWN) + sum(map(ord, method)) % (n - len(_KNOWN))
    return {"color": palette[i % n], "marker": _MARKERS[i % len(_MARKERS)]}


def line_styles(df: pd.DataFrame) -> dict[str, dict]:
    """{method_id: matplotlib style} for the method specs of ``df``: a method's plain spec
    (``random``) gets :func:`method_style`; each other spec of that method (``random(seed=1)``)
    a darker shade of its colour, its own dash pattern and hollow markers. Privileged
    methods are dashed."""
    from matplotlib.colors import to_rgb

    pairs = df[["method", "label"]].drop_duplicates() if "label" in df.columns else \
        df[["method", "method_id"]].drop_duplicates().rename(columns={"method_id": "label"})
    privileged = set(df.loc[df["privileged"].fillna(False).astype(bool), "method"]) if "privileged" in df else set()
    out = {}
    for method, group in pairs.groupby("method", sort=True):
        base = method_style(str(method))
        specs = sorted(group["label"].astype(str), key=lambda s: (s != method, s))
        for k, spec in enumerate(specs):
            style = {"color": base["color"], "marker": base["marker"], "linestyle": "--" if method in privileged else "-",
                     "markerfacecolor": base["color"]}
            if k:
                shade = 0.55 ** (1 + (k - 1) % 2) if k <= 2 else 0.8
                style["color"] = tuple(c * shade for c in to_rgb(base["color"]))
                style["linestyle"] = _VARIANT_DASHES[(k - 1) % len(_VARIANT_DASHES)]
                style["markerfacecolor"] = "white"
            out[spec] = style
    return out


def _usable(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    missing = [c for c in ["status", "backbone", "method", "p_ratio", *columns] if c not in df.columns]
    if missing:
        raise TokbenchError(
            f"the results have no {', '.join(missing)} column: run 'tokbench run --metrics flops,throughput' first"
        )
    ok = df[(df["status"] == "ok")].dropna(subset=columns)
    if ok.empty:
        raise TokbenchError(f"no results with status ok and {', '.join(columns)} to plot")
    return ok


def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Adds ``device_label`` (where the throughput comes from: device and batch size) and
    ``label`` (the method spec, with the protocol when the rows hold several)."""
    from tokbench.report.selection import speed_label

    label = df.get("method_id", df["method"]).astype(str)
    if "protocol" in df.columns and df["protocol"].nunique() > 1:
        label = label + " [" + df["protocol"].astype(str) + "]"
    privileged = df["privileged"] if "privileged" in df.columns else pd.Series(False, index=df.index)
    return df.assign(device_label=speed_label(df), label=label, privileged=privileged.fillna(False).astype(bool))


def _highlighted(df: pd.DataFrame, highlight: Sequence[str]) -> set[str] | None:
    """The labels to emphasise (a method name highlights all its specs); None: all of them."""
    if not highlight:
        return None
    names = set(df["label"]) | set(df["method"].astype(str))
    unknown = [h for h in highlight if h not in names]
    if unknown:
        raise TokbenchError(f"--highlight {unknown[0]!r}: no such method in the results; they have: "
                            f"{', '.join(sorted(set(df['label'])))}")
    wanted = set(highlight)
    return {str(lab) for lab, m in zip(df["label"], df["method"]) if lab in wanted or m in wanted}


def _relative(panel: pd.DataFrame, where: str) -> pd.Series:
    full = panel.loc[panel["method"].isin(FULL_METHODS), "gflops"]
    if full.empty:
        raise TokbenchError(f"--x relative needs the full model's record (method none) in every panel; {where} has none "
                            "(add it with 'tokbench run --methods none,...')")
    return 100 * panel["gflops"] / float(full.mean())


def _x_column(panel: pd.DataFrame, x: str, where: str) -> pd.Series:
    if x == "relative":
        return _relative(panel, where)
    if x == "clips_per_s":
        return panel["clips_per_s"]
    return panel["gflops"]


def _interval(rows: pd.DataFrame, column: str, scale: float = 1.0) -> np.ndarray | None:
    """(2, n) distances below and above ``column`` from ``column_lo``/``column_hi`` (None when absent)."""
    lo, hi = f"{column}_lo", f"{column}_hi"
    if lo not in rows.columns or hi not in rows.columns:
        return None
    low, high = pd.to_numeric(rows[lo], errors="coerce"), pd.to_numeric(rows[hi], errors="coerce")
    if low.isna().all() or high.isna().all():
        return None
    value = rows[column].astype(float)
    below = (value - low).clip(lower=0).fillna(0).to_numpy()
    above = (high - value).clip(lower=0).fillna(0).to_numpy()
    return scale * np.vstack([below, above])


def place_labels(fig, items: list[dict], *, fontsize: float = 5.5) -> list:
    """Annotate points without collisions and return the texts placed.

    Each item is ``{"ax", "x", "y", "text", "color", "priority"}`` (data coordinates; lower
    priority first). A label is tried right-above, right-below, left-above and left-below
    its point and kept at the first place that stays inside the axes and overlaps no placed
    label and no other point's marker; a label with no free place is left out.
    """
    if not items:
        return []
    fig.canvas.draw()  # fix the layout, so that data -> pixel transforms hold
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72
    radius = 2.2 * scale  # half a marker, in pixels
    markers: dict[object, np.ndarray] = {}
    for ax in {id(it["ax"]): it["ax"] for it in items}.values():
        pts = []
        for line in ax.get_lines():
            if line.get_marker() not in (None, "None", "", " ") and line.get_visible():
                pts.append(line.get_xydata())
        for coll in ax.collections:
            offsets = coll.get_offsets()
            if len(offsets):
                pts.append(np.asarray(offsets))
        xy = np.vstack(pts) if pts else np.zeros((0, 2))
        markers[ax] = ax.transData.transform(xy) if len(xy) else xy
    placed, boxes = [], []
    offsets = [(2.5, 1.5), (2.5, -6.0), (-2.5, 1.5), (-2.5, -6.0)]
    for it in sorted(items, key=lambda it: it["priority"]):
        ax = it["ax"]
        frame = ax.get_window_extent(renderer)
        px, py = ax.transData.transform((it["x"], it["y"]))
        others = markers[ax]
        others = others[(np.abs(others[:, 0] - px) > 0.5) | (np.abs(others[:, 1] - py) > 0.5)] if len(others) else others
        for dx, dy in offsets:
            text = ax.annotate(it["text"], (it["x"], it["y"]), xytext=(dx, dy), textcoords="offset points",
                               fontsize=fontsize, color=it["color"], ha="left" if dx > 0 else "right", zorder=6)
            text.set_in_layout(False)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            clash = any(box.overlaps(b) for b in boxes) or (len(others) and bool(
                ((others[:, 0] + radius > box.x0) & (others[:, 0] - radius < box.x1)
                 & (others[:, 1] + radius > box.y0) & (others[:, 1] - radius < box.y1)).any()))
            if inside and not clash:
                placed.append(text)
                boxes.append(box)
                break
            text.remove()
    return placed


def _label_priority(line: pd.DataFrame, order: int) -> list[tuple[float, ...]]:
    """Priorities of a line's P labels: its two ends first, then the points between; lines
    alternate (round robin), so that every line gets its ends labelled before any its middle."""
    ratios = list(line["p_ratio"])
    rank = {}
    if ratios:
        ends = [int(np.argmin(ratios)), int(np.argmax(ratios))]
        for r, i in enumerate(dict.fromkeys(ends)):
            rank[i] = r
        middle = [i for i in range(len(ratios)) if i not in rank]
        for r, i in enumerate(middle, start=len(rank)):
            rank[i] = r
    return [(rank[i], order) for i in range(len(ratios))]


def _legend(fig, handles: dict[str, object], width: float, *, title: str | None = None) -> None:
    """One legend under the axes, with as many columns as fit in the figure's width (measured)."""
    if not handles:
        return
    renderer = fig.canvas.get_renderer()
    limit = 0.98 * width * fig.dpi
    for ncol in range(min(len(handles), 6), 0, -1):
        legend = fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=ncol,
                            frameon=False, title=title, handlelength=2.2, columnspacing=1.2)
        if ncol == 1 or legend.get_window_extent(renderer).width <= limit:
            return
        legend.remove()


def _wrap(text: str, width_in: float, size: float) -> str:
    """``text`` in lines that fit ``width_in`` inches at ``size`` points (a generous character width)."""
    return "\n".join(textwrap.wrap(text, max(20, int(0.9 * width_in * 72 / (size * 0.6)))))


def _draw_line(ax, line: pd.DataFrame, x: pd.Series, y: pd.Series, style: dict, *, grey: bool, name: str,
               yerr: np.ndarray | None, xerr: np.ndarray | None, full: bool):
    """One method's points (the full model: a star) with their error bars; returns the legend handle."""
    if full:
        return ax.scatter(x, y, marker="*", s=70, color=style["color"], edgecolor="black", linewidth=0.4, zorder=5,
                          label=f"{name} (full model)")
    if grey:
        (h,) = ax.plot(x, y, marker=style["marker"], color=GREY, markersize=2.0, linewidth=0.7, zorder=2,
                       linestyle=style["linestyle"], label=name)
        return h
    if yerr is not None or xerr is not None:
        ax.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="none", ecolor=style["color"], elinewidth=0.6, capsize=1.4,
                    capthick=0.6, alpha=0.75, zorder=3)
    (h,) = ax.plot(x, y, marker=style["marker"], color=style["color"], linestyle=style["linestyle"],
                   markerfacecolor=style["markerfacecolor"], markeredgewidth=0.6, zorder=4, label=name)
    return h


def _draw_front(ax, panel: pd.DataFrame, higher_is_cheaper: bool):
    """The panel's Pareto front over the non-privileged points (column ``_x``), as a grey step line."""
    from tokbench.report.pareto import pareto_mask

    public = panel[~panel["privileged"]]
    if public.empty:
        return None
    cost = -public["_x"] if higher_is_cheaper else public["_x"]
    front = public[pareto_mask(cost, public["accuracy"]).to_numpy()].sort_values("_x")
    # What is attainable at each x: the best point at least as cheap (a staircase under the front).
    (h,) = ax.step(front["_x"], 100 * front["accuracy"], where="pre" if higher_is_cheaper else "post",
                   color="0.55", linewidth=2.6, alpha=0.3, zorder=1, label="Pareto front (non-privileged)")
    return h


def _log_scale(ax) -> None:
    """A log x-axis with plain tick labels (0.02, 0.05, 0.1) at 1-2-5 steps."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _x_axis(ax, x: str, *, label: bool, narrow: bool = False) -> None:
    """Scale and label of the x-axis; ``narrow`` panels put the FLOP convention on a second line."""
    if x == "log":
        _log_scale(ax)
    if label:
        text = {"relative": RELATIVE_AXIS, "clips_per_s": THROUGHPUT_AXIS}.get(x, GFLOPS_AXIS)
        ax.set_xlabel(text.replace(" (", "\n(", 1) if narrow and len(text) > 32 else text)


def accuracy_figure(panels: pd.DataFrame, *, columns: int = 3, x: str = "gflops", highlight: Sequence[str] = (),
                    width: float | None = None, device: str | None = None):
    """One panel per dataset: headline accuracy (%) against ``x`` (``gflops``, ``log``,
    ``relative`` or ``clips_per_s``), a line per method through its P-Ratio points, the full
    model as a star, privileged methods dashed, the Pareto front of the non-privileged points
    in grey, error bars from the intervals, P labels where they fit. ``device`` names where
    the throughput was measured (in the title). Rows need :func:`_with_labels` and
    :func:`headline_accuracy` columns. Returns the Figure."""
    datasets = sorted(panels["dataset"].unique())
    cols = min(columns, len(datasets))
    rows = -(-len(datasets) // cols)
    width = width or (COLUMN_WIDTH if cols == 1 else FULL_WIDTH)
    panel_h = 2.3 if cols == 1 else 1.85
    styles = line_styles(panels)
    emphasis = _highlighted(panels, highlight)
    several_backbones = panels["backbone"].nunique() > 1
    handles: dict[str, object] = {}
    labels: list[dict] = []
    with _paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(width, panel_h * rows + 0.9), squeeze=False, layout="constrained")
        fig.get_layout_engine().set(h_pad=0.02, w_pad=0.02, hspace=0.03, wspace=0.03)
        for k, (ax, dataset) in enumerate(zip(axes.flat, datasets)):
            panel = panels[panels["dataset"] == dataset]
            panel = panel.assign(_x=_x_column(panel, x, dataset))
            for order, ((label, backbone), line) in enumerate(panel.groupby(["label", "backbone"], sort=True)):
                method = str(line["method"].iloc[0])
                line = line.sort_values("p_ratio")  # the method's path along P (measured speed is noisy)
                grey = emphasis is not None and label not in emphasis and method not in FULL_METHODS
                name = f"{label} [{backbone}]" if several_backbones else str(label)
                yerr = None if grey else _interval(line, "accuracy", 100)
                xerr = _interval(line, "clips_per_s") if x == "clips_per_s" and not grey else None
                h = _draw_line(ax, line, line["_x"], 100 * line["accuracy"], styles[label], grey=grey, name=name,
                               yerr=yerr, xerr=xerr, full=method in FULL_METHODS)
                if grey:
                    handles.setdefault("other methods", h)
                else:
                    handles.setdefault(h.get_label(), h)
                if method not in FULL_METHODS and not grey:
                    for (_, row), prio in zip(line.iterrows(), _label_priority(line, order)):
                        labels.append({"ax": ax, "x": row["_x"], "y": 100 * row["accuracy"], "text": f"{row['p_ratio']:g}",
                                       "color": styles[label]["color"], "priority": prio})
            front = _draw_front(ax, panel, x == "clips_per_s")
            if front is not None:
                handles.setdefault(front.get_label(), front)
            metric = panel["accuracy_metric"].dropna().iloc[0]
            ax.set_title(dataset if device is None or len(datasets) > 1 else f"{dataset} on {device}", pad=3)
            ax.set_ylabel(f"{metric} (%)")
            below = k + cols
            _x_axis(ax, x, label=below >= len(datasets), narrow=cols > 1)  # the bottom panel of each column
            ax.grid(alpha=0.3)
            ax.margins(x=0.04, y=0.06)
        for ax in list(axes.flat)[len(datasets):]:
            ax.set_visible(False)
        if len(datasets) > 1:
            what = "throughput" if x == "clips_per_s" else "FLOPs"
            where = f" on {device}" if device else ""
            fig.suptitle(_wrap(f"accuracy vs {what}{where}", width, PAPER_RC["figure.titlesize"]))
        if emphasis is not None and "other methods" in handles:
            handles["other methods"] = handles.pop("other methods")  # last
        _legend(fig, handles, width, title="point labels: P-Ratio, where they fit")
        place_labels(fig, labels)
    return fig


def _accuracy_rows(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    if "dataset" not in df.columns or df["dataset"].isna().all():
        raise TokbenchError("the results have no accuracy records: run 'tokbench run' with datasets first")
    from tokbench.report.selection import newest_per_cell

    return _with_labels(_usable(headline_accuracy(newest_per_cell(df[df["dataset"].notna()])), columns))


def _check_x(x: str) -> None:
    if x not in X_MODES:
        raise TokbenchError(f"--x {x!r}: choose one of {', '.join(X_MODES)}")


def plot_accuracy_vs_gflops(df: pd.DataFrame, out_dir: str | Path, *, x: str = "gflops",
                            highlight: Sequence[str] = ()) -> list[Path]:
    """The accuracy-vs-GFLOPs figure (one panel per dataset) as PNG and PDF.

    Args:
        x: ``gflops``, ``log`` or ``relative`` (% of each panel's full model).
        highlight: methods (names or specs) drawn in colour; the others grey.
    """
    _check_x(x)
    ok = _accuracy_rows(df, ["gflops", "accuracy"])
    return _save(accuracy_figure(ok, x=x, highlight=highlight), out_dir, "accuracy_vs_gflops")


def plot_accuracy_per_dataset(df: pd.DataFrame, out_dir: str | Path, *, x: str = "gflops",
                              highlight: Sequence[str] = ()) -> dict[str, list[Path]]:
    """One column-width accuracy-vs-GFLOPs figure per dataset, ``accuracy_vs_gflops_<dataset>``
    (PNG and PDF); returns {dataset: paths}."""
    _check_x(x)
    ok = _accuracy_rows(df, ["gflops", "accuracy"])
    out = {}
    for dataset, panel in ok.groupby("dataset", sort=True):
        fig = accuracy_figure(panel, x=x, highlight=highlight)
        out[str(dataset)] = _save(fig, out_dir, f"accuracy_vs_gflops_{_slug(str(dataset))}")
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+._-]+", "-", text).strip("-").lower() or "x"


def plot_accuracy_vs_throughput(df: pd.DataFrame, out_dir: str | Path, *, highlight: Sequence[str] = (),
                                x: str = "gflops") -> list[Path]:
    """Accuracy against measured clips/s (one panel per dataset), PNG and PDF, one figure per
    throughput device and batch size (``accuracy_vs_throughput_<device>`` when there are
    several). Privileged methods (never timed) have no throughput and are left out. ``x``:
    ``log`` puts clips/s on a log scale; the other modes keep it linear."""
    _check_x(x)
    if "dataset" not in df.columns or df["dataset"].isna().all() or "clips_per_s" not in df.columns:
        raise TokbenchError("the results have no records with both accuracy and throughput")
    ok = _accuracy_rows(df, ["clips_per_s", "accuracy"])
    groups = sorted(ok["device_label"].unique())
    paths = []
    for device in groups:
        rows = ok[ok["device_label"] == device]
        fig = accuracy_figure(rows, x="clips_per_s", highlight=highlight, device=device)
        if x == "log":
            for ax in fig.axes:
                if ax.get_visible() and ax.get_title():
                    _log_scale(ax)
        stem = "accuracy_vs_throughput" + ("" if len(groups) == 1 else f"_{_slug(device)}")
        paths += _save(fig, out_dir, stem)
    return paths


def _ideal_curve(ax, panel: pd.DataFrame, full: pd.Series, x: str) -> None:
    """Throughput if time fell exactly with FLOPs: clips/s = full_clips/s * full_GF / GF.
    A method's points on this curve have realized-speedup efficiency 1. It does not set the
    axis limits: where it leaves the data's range, it leaves the axes."""
    lo, hi = float(panel["_x"].min()), float(full["_x"])
    grid = np.geomspace(max(lo, 1e-12), hi, 100)
    ax.plot(grid, full["clips_per_s"] * hi / grid, color="0.35", linestyle=":", linewidth=0.9,
            label="ideal: time ∝ FLOPs", zorder=1, scalex=False, scaley=False)


def throughput_figure(backbone: str, panel: pd.DataFrame, *, x: str = "gflops", highlight: Sequence[str] = ()):
    """The throughput-vs-GFLOPs figure of one backbone on one device (rows with status ok,
    labelled by :func:`_with_labels`): clips/s against GFLOPs, a line per method, the full
    model as a star with the ideal curve, error bars from ``clips_per_s_lo``/``_hi``, P
    labels where they fit. The y-axis spans the data. Returns the Figure."""
    devices = sorted(panel["device_label"].unique())
    if len(devices) > 1:
        raise TokbenchError(f"throughput of several devices in one figure ({'; '.join(devices)}): draw one per device")
    styles = line_styles(panel)
    emphasis = _highlighted(panel, highlight)
    panel = panel.assign(_x=_x_column(panel, x, backbone))
    handles: dict[str, object] = {}
    labels: list[dict] = []
    with _paper_style():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 3.3), layout="constrained")
        spread = False  # some method has several points at one P (a cost that depends on the clips)
        for order, (label, line) in enumerate(panel.groupby("label", sort=True)):
            method = str(line["method"].iloc[0])
            grey = emphasis is not None and label not in emphasis and method not in FULL_METHODS
            if line["p_ratio"].duplicated().any():
                # One measurement per dataset: faint points, the line through their medians.
                spread = True
                ax.scatter(line["_x"], line["clips_per_s"], s=5, color=GREY if grey else styles[label]["color"],
                           alpha=0.35, linewidth=0, zorder=2)
                line = line.groupby("p_ratio", as_index=False).agg(
                    {"_x": "median", "clips_per_s": "median", "method": "first", "label": "first"})
            line = line.sort_values("_x")
            h = _draw_line(ax, line, line["_x"], line["clips_per_s"], styles[label], grey=grey, name=str(label),
                           yerr=None if grey else _interval(line, "clips_per_s"), xerr=None,
                           full=method in FULL_METHODS)
            handles.setdefault("other methods" if grey else h.get_label(), h)
            if method in FULL_METHODS:
                continue
            if not grey:
                for (_, row), prio in zip(line.iterrows(), _label_priority(line, order)):
                    labels.append({"ax": ax, "x": row["_x"], "y": row["clips_per_s"], "text": f"{row['p_ratio']:g}",
                                   "color": styles[label]["color"], "priority": prio})
        top = panel["clips_per_s"].max()
        if "clips_per_s_hi" in panel.columns and panel["clips_per_s_hi"].notna().any():
            top = max(top, panel["clips_per_s_hi"].max())
        ax.set_ylim(0, 1.1 * top)
        full = panel[panel["method"].isin(FULL_METHODS)]
        if not full.empty:
            _ideal_curve(ax, panel, full.iloc[0], x)
            handles["ideal: time ∝ FLOPs"] = ax.get_lines()[-1]
        _x_axis(ax, x, label=True)
        ax.set_ylabel(THROUGHPUT_AXIS)
        ax.grid(alpha=0.3)
        ax.margins(x=0.04)
        ax.set_title(_wrap(f"{backbone} on {devices[0]}: throughput vs FLOPs", COLUMN_WIDTH, PAPER_RC["axes.titlesize"]),
                     pad=3)
        if "other methods" in handles:
            handles["other methods"] = handles.pop("other methods")
        note = "labels: P-Ratio, where they fit" + ("; faint dots: one per dataset (cost depends on the clips), "
                                                   "line through their medians" if spread else "")
        _legend(fig, handles, COLUMN_WIDTH, title=_wrap(note, COLUMN_WIDTH, PAPER_RC["legend.fontsize"]))
        place_labels(fig, labels)
    return fig


def plot_throughput_vs_gflops(df: pd.DataFrame, out_dir: str | Path, *, x: str = "gflops",
                              highlight: Sequence[str] = ()) -> list[Path]:
    """Per backbone and throughput device, clips/s (y) against measured GFLOPs (x), a line per
    method through its P-Ratio points and the full model as a star. Writes PNG and PDF
    (``throughput_vs_gflops_<backbone>``, with ``_<device>`` when several devices or batch
    sizes were timed: their throughputs are not comparable); returns their paths."""
    _check_x(x)
    from tokbench.report.selection import newest_per_cell

    ok = _with_labels(_usable(newest_per_cell(df), ["gflops", "clips_per_s"]))
    # A throughput measured once and copied into every dataset's record is one point; methods
    # whose cost depends on the clips (RLT, LITE++) keep a point per dataset.
    ok = ok.drop_duplicates(["backbone", "device_label", "label", "p_ratio", "clips_per_s"], keep="last")
    several = ok["device_label"].nunique() > 1
    paths: list[Path] = []
    for (backbone, device), panel in ok.groupby(["backbone", "device_label"], sort=True):
        stem = f"throughput_vs_gflops_{backbone}" + (f"_{_slug(device)}" if several else "")
        paths += _save(throughput_figure(str(backbone), panel, x=x, highlight=highlight), out_dir, stem)
    return paths


def plot_all(df: pd.DataFrame, out_dir: str | Path, *, x: str = "gflops", highlight: Sequence[str] = ()) -> list[Path]:
    """``tokbench plot``: accuracy vs GFLOPs, accuracy vs throughput and throughput vs GFLOPs,
    each drawn when the records allow it; returns the files written.

    Raises:
        TokbenchError: none of the three can be drawn (the reasons, joined).
    """
    _check_x(x)
    paths, problems = [], []
    for plot in (plot_accuracy_vs_gflops, plot_accuracy_vs_throughput, plot_throughput_vs_gflops):
        try:
            paths += plot(df, out_dir, x=x, highlight=highlight)
        except TokbenchError as e:
            if str(e).startswith(("--x", "--highlight")):
                raise
            problems.append(str(e))
    if not paths:
        raise TokbenchError("; ".join(dict.fromkeys(problems)))
    return paths


def _save(fig, out_dir: str | Path, stem: str) -> list[Path]:
    """Write ``fig`` as PNG and PDF under ``out_dir`` and close it."""
    from tokbench.store import output_folder

    try:
        out_dir = output_folder(out_dir)  # OutputError (one line) when a file is in the way
    except TokbenchError:
        plt.close(fig)
        raise
    paths = [out_dir / f"{stem}.{suffix}" for suffix in ("png", "pdf")]
    with _paper_style():
        for path in paths:
            # No creation date: regenerating a report from the same records gives the same files.
            metadata = {"CreationDate": None} if path.suffix == ".pdf" else {"Software": None}
            fig.savefig(path, dpi=DPI, metadata=metadata)
    plt.close(fig)
    return paths


#: x-axes of the accuracy figures: column, label, and whether more is cheaper (kept for callers).
ACCURACY_AXES = {"gflops": (GFLOPS_AXIS, False), "clips_per_s": ("throughput (clips/s, batch as recorded)", True)}
