"""Figures from results DataFrames (matplotlib/seaborn, Agg backend, no torch).

Every figure puts **measured** cost on the x-axis and states the FLOP convention on it;
P-Ratio is only the label of the points along a method's line. Each method keeps one
colour and marker across every figure (:func:`method_style`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never opens a window

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from tokbench.errors import TokbenchError  # noqa: E402

__all__ = ["plot_throughput_vs_gflops", "plot_accuracy_vs_gflops", "plot_accuracy_vs_throughput", "method_style",
           "GFLOPS_AXIS"]

GFLOPS_AXIS = "GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP)"
FULL_METHODS = ("none",)

# Fixed per-method styles so a method looks the same in every figure; unknown methods
# get the remaining colours in name order.
_KNOWN = ["none", "random", "tome", "vid_tldr", "rlt", "motion", "attention", "oracle", "lite", "lite++", "lookwhen"]
_MARKERS = ["*", "o", "s", "D", "^", "v", "P", "X", "<", ">", "h", "p", "8"]


def method_style(method: str) -> dict:
    """Colour and marker of a method (stable across figures and runs)."""
    import seaborn as sns

    palette = sns.color_palette("tab10") + sns.color_palette("Dark2")  # 18 distinct, saturated
    n = len(palette)
    i = _KNOWN.index(method) if method in _KNOWN else len(_KNOWN) + sum(map(ord, method)) % (n - len(_KNOWN))
    return {"color": palette[i % n], "marker": _MARKERS[i % len(_MARKERS)]}


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


def _ideal_curve(ax, panel: pd.DataFrame, full: pd.Series) -> None:
    """Throughput if time fell exactly with FLOPs: clips/s = full_clips/s * full_GF / GF.
    A method's points on this curve have realized-speedup efficiency 1."""
    import numpy as np

    x = np.geomspace(panel["gflops"].min(), full["gflops"], 100)
    ax.plot(x, full["clips_per_s"] * full["gflops"] / x, color="grey", linestyle=":", linewidth=1,
            label="ideal: time ∝ FLOPs", zorder=1)


def _with_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(
        device_label=df.get("env.device_name", pd.Series("?", index=df.index)).astype(str)
        + ", batch " + df.get("batch_size", pd.Series(0, index=df.index)).astype(str),
        label=df.get("method_id", df["method"]).astype(str),
    )


def throughput_figure(backbone: str, panel: pd.DataFrame):
    """The throughput-vs-GFLOPs figure of one backbone (rows with status ok, labelled by
    :func:`_with_labels`). Returns the matplotlib Figure; the caller saves and closes it."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    several_devices = panel["device_label"].nunique() > 1
    for (label, device), line in panel.groupby(["label", "device_label"], sort=True):
        method = line["method"].iloc[0]
        style = method_style(method)
        line = line.sort_values("gflops")
        name = f"{label} [{device}]" if several_devices else label
        if method in FULL_METHODS:
            ax.scatter(line["gflops"], line["clips_per_s"], marker="*", s=220, color=style["color"],
                       edgecolor="black", linewidth=0.6, zorder=5, label=f"{name} (full model)")
            _ideal_curve(ax, panel[panel["device_label"] == device], line.iloc[0])
            continue
        dashed = bool(line["privileged"].iloc[0]) if "privileged" in line else False
        ax.plot(line["gflops"], line["clips_per_s"], marker=style["marker"], color=style["color"],
                linestyle="--" if dashed else "-", label=name)
        for _, row in line.iterrows():
            ax.annotate(f"{row['p_ratio']:g}", (row["gflops"], row["clips_per_s"]), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=style["color"])
    devices = "; ".join(sorted(panel["device_label"].unique()))
    ax.set(xlabel=GFLOPS_AXIS, ylabel="throughput (clips/s)", title=f"{backbone}: throughput vs FLOPs ({devices})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="method (labels: P-Ratio)", title_fontsize=8)
    return fig


def plot_throughput_vs_gflops(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Per backbone, clips/s (y) against measured GFLOPs (x), a line per method through its
    P-Ratio points and the full model as a star. Writes PNG and PDF; returns their paths.

    Rows measured on different devices or batch sizes are drawn as separate lines, since
    their throughputs are not comparable.
    """
    ok = _with_labels(_usable(df, ["gflops", "clips_per_s"]))
    paths: list[Path] = []
    for backbone, panel in ok.groupby("backbone", sort=True):
        paths += _save(throughput_figure(str(backbone), panel), out_dir, f"throughput_vs_gflops_{backbone}")
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
    for path in paths:
        # No creation date: regenerating a report from the same records gives the same files.
        metadata = {"CreationDate": None} if path.suffix == ".pdf" else {}
        fig.savefig(path, dpi=150, metadata=metadata)
    plt.close(fig)
    return paths


HEADLINE_METRICS = ("top1", "mAP", "action_top1")  # single-label, multi-label, verb+noun


def with_headline_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Adds ``accuracy`` and ``accuracy_metric``: each row's headline metric (the first of
    top1, mAP, action_top1 it has)."""
    acc = pd.Series(float("nan"), index=df.index)
    name = pd.Series(None, index=df.index, dtype=object)
    for metric in HEADLINE_METRICS:
        if metric in df.columns:
            take = acc.isna() & df[metric].notna()
            acc[take] = df.loc[take, metric].astype(float)
            name[take] = metric
    return df.assign(accuracy=acc, accuracy_metric=name)


#: x-axes of the accuracy figures: column, label, and whether more is cheaper.
ACCURACY_AXES = {"gflops": (GFLOPS_AXIS, False), "clips_per_s": ("throughput (clips/s, batch as recorded)", True)}


def _draw_front(ax, panel: pd.DataFrame, x: str, higher_is_cheaper: bool):
    """The panel's Pareto front over the non-privileged points, as a grey step line."""
    from tokbench.report.pareto import pareto_mask

    public = panel[~panel["privileged"].fillna(False).astype(bool)] if "privileged" in panel else panel
    if public.empty:
        return None
    cost = -public[x] if higher_is_cheaper else public[x]
    front = public[pareto_mask(cost, public["accuracy"])].sort_values(x)
    # What is attainable at each x: the best point at least as cheap (a staircase under the front).
    (h,) = ax.step(front[x], 100 * front["accuracy"], where="pre" if higher_is_cheaper else "post",
                   color="0.55", linewidth=3, alpha=0.35, zorder=1, label="Pareto front (non-privileged)")
    return h


def accuracy_figure(panels: pd.DataFrame, *, columns: int = 3, x: str = "gflops"):
    """One panel per dataset: headline accuracy (%) against ``x`` (GFLOPs or clips/s), a line
    per method through its P-Ratio points, the full model as a star, privileged methods
    dashed, the Pareto front of the non-privileged points in grey. Returns the Figure."""
    axis_label, higher_is_cheaper = ACCURACY_AXES[x]
    datasets = sorted(panels["dataset"].unique())
    cols = min(columns, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows + 0.6), squeeze=False, layout="constrained")
    several_backbones = panels["backbone"].nunique() > 1
    handles: dict[str, object] = {}
    for ax, dataset in zip(axes.flat, datasets):
        panel = panels[panels["dataset"] == dataset]
        for (label, backbone), line in panel.groupby(["label", "backbone"], sort=True):
            method = line["method"].iloc[0]
            style = method_style(method)
            line = line.sort_values("p_ratio")  # the method's path along P (measured speed is noisy)
            name = f"{label} [{backbone}]" if several_backbones else label
            y = 100 * line["accuracy"]
            if method in FULL_METHODS:
                h = ax.scatter(line[x], y, marker="*", s=200, color=style["color"], edgecolor="black",
                               linewidth=0.6, zorder=5, label=f"{name} (full model)")
            else:
                dashed = bool(line["privileged"].iloc[0]) if "privileged" in line else False
                (h,) = ax.plot(line[x], y, marker=style["marker"], color=style["color"], markersize=4,
                               linestyle="--" if dashed else "-", label=name)
                for _, row in line.iterrows():
                    ax.annotate(f"{row['p_ratio']:g}", (row[x], 100 * row["accuracy"]), textcoords="offset points",
                                xytext=(3, 3), fontsize=6, color=style["color"])
            handles.setdefault(h.get_label(), h)
        front = _draw_front(ax, panel, x, higher_is_cheaper)
        if front is not None:
            handles.setdefault(front.get_label(), front)
        metric = panel["accuracy_metric"].dropna().iloc[0]
        ax.set_title(dataset)
        ax.set_ylabel(f"{metric} (%)")
        ax.set_xlabel(axis_label, fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(datasets):]:
        ax.set_visible(False)
    fig.suptitle(f"accuracy vs {'throughput' if x == 'clips_per_s' else 'FLOPs'} (point labels: P-Ratio)", fontsize=10)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=min(6, len(handles)), fontsize=8)
    return fig


def plot_accuracy_vs_gflops(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """The accuracy-vs-GFLOPs figure (one panel per dataset) as PNG and PDF."""
    if "dataset" not in df.columns or df["dataset"].isna().all():
        raise TokbenchError("the results have no accuracy records: run 'tokbench run' with datasets first")
    ok = _with_labels(_usable(with_headline_accuracy(df[df["dataset"].notna()]), ["gflops", "accuracy"]))
    return _save(accuracy_figure(ok), out_dir, "accuracy_vs_gflops")


def plot_accuracy_vs_throughput(df: pd.DataFrame, out_dir: str | Path) -> list[Path]:
    """Accuracy against measured clips/s (one panel per dataset), PNG and PDF. Privileged
    methods (never timed) have no throughput and are left out."""
    if "dataset" not in df.columns or df["dataset"].isna().all() or "clips_per_s" not in df.columns:
        raise TokbenchError("the results have no records with both accuracy and throughput")
    ok = _with_labels(_usable(with_headline_accuracy(df[df["dataset"].notna()]), ["clips_per_s", "accuracy"]))
    return _save(accuracy_figure(ok, x="clips_per_s"), out_dir, "accuracy_vs_throughput")
