"""Plot content on hand-made results frames (no torch, no measurement)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from tokbench.errors import TokbenchError
from tokbench.report.plots import (
    GFLOPS_AXIS,
    RELATIVE_AXIS,
    _with_labels,
    accuracy_figure,
    line_styles,
    method_style,
    place_labels,
    plot_accuracy_per_dataset,
    plot_accuracy_vs_gflops,
    plot_accuracy_vs_throughput,
    plot_all,
    plot_throughput_vs_gflops,
    throughput_figure,
)
from tokbench.report.tables import headline_accuracy


def frame(device="CPU X", batch=1):
    rows = [("none", 1.0, 100.0, 2.0)] + [("random", p, 100.0 * p, 2.0 / p * 0.9) for p in (0.25, 0.5, 0.75)]
    return pd.DataFrame([
        {"status": "ok", "backbone": "vit", "method": m, "method_id": m, "p_ratio": p, "gflops": g,
         "clips_per_s": c, "privileged": False, "env.device_name": device, "batch_size": batch}
        for m, p, g, c in rows
    ])


def inside_figure(fig, artist) -> bool:
    renderer = fig.canvas.get_renderer()
    box, page = artist.get_window_extent(renderer), fig.bbox
    return page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1


def test_throughput_figure_has_full_model_star_ideal_curve_and_method_line():
    fig = throughput_figure("vit", _with_labels(frame()))
    ax = fig.axes[0]
    _, labels = ax.get_legend_handles_labels()
    assert set(labels) == {"none (full model)", "ideal: time ∝ FLOPs", "random"}
    assert ax.get_xlabel() == GFLOPS_AXIS == "GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP)"
    ideal = next(line for line in ax.get_lines() if line.get_label() == "ideal: time ∝ FLOPs")
    x, y = ideal.get_data()
    assert (x * y) == pytest.approx(200.0)  # full model: 2 clips/s at 100 GFLOPs
    random = next(line for line in ax.get_lines() if line.get_label() == "random")
    assert list(random.get_xdata()) == [25.0, 50.0, 75.0]  # sorted by measured cost
    assert "CPU X, batch 1" in ax.get_title()
    # The y-axis spans the data, not the ideal curve (which leaves the axes at the left).
    assert ax.get_ylim() == pytest.approx((0, 1.1 * 7.2))
    fig.canvas.draw()
    assert inside_figure(fig, fig.legends[0]) and inside_figure(fig, ax.title)
    plt.close(fig)


def test_devices_are_never_on_one_figure(tmp_path):
    both = pd.concat([frame("CPU X", 1), frame("GPU Y", 8)], ignore_index=True)
    with pytest.raises(TokbenchError, match="several devices"):
        throughput_figure("vit", _with_labels(both))
    paths = plot_throughput_vs_gflops(both, tmp_path)
    assert [p.name for p in paths] == ["throughput_vs_gflops_vit_cpu-x-batch-1.png", "throughput_vs_gflops_vit_cpu-x-batch-1.pdf",
                                       "throughput_vs_gflops_vit_gpu-y-batch-8.png", "throughput_vs_gflops_vit_gpu-y-batch-8.pdf"]
    assert [p.name for p in plot_throughput_vs_gflops(frame(), tmp_path / "one")] == [
        "throughput_vs_gflops_vit.png", "throughput_vs_gflops_vit.pdf"]


def test_styles_are_fixed_per_method_and_variants_differ():
    assert method_style("random") == method_style("random")
    assert method_style("none")["color"] != method_style("random")["color"]
    assert method_style("none")["marker"] == "*"
    df = pd.DataFrame({"method": ["random", "random", "random", "oracle"],
                       "label": ["random", "random(seed=1)", "random(seed=2)", "oracle"],
                       "privileged": [False, False, False, True]})
    styles = line_styles(df)
    base, one, two = styles["random"], styles["random(seed=1)"], styles["random(seed=2)"]
    assert base["color"] == method_style("random")["color"] and base["linestyle"] == "-"
    assert len({str(s["linestyle"]) for s in (base, one, two)}) == 3 and len({s["color"] for s in (base, one, two)}) == 3
    assert one["markerfacecolor"] == "white" and one["marker"] == base["marker"]
    assert styles["oracle"]["linestyle"] == "--"


def test_files_written_and_failed_rows_ignored(tmp_path):
    df = pd.concat([frame(), pd.DataFrame([{"status": "error", "backbone": "vit", "method": "random",
                                             "p_ratio": 0.1, "gflops": None, "clips_per_s": None}])])
    paths = plot_throughput_vs_gflops(df, tmp_path)
    assert [p.name for p in paths] == ["throughput_vs_gflops_vit.png", "throughput_vs_gflops_vit.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths[1].read_bytes()[:4] == b"%PDF"


def test_nothing_to_plot_is_a_clear_error(tmp_path):
    with pytest.raises(TokbenchError, match="no clips_per_s column"):
        plot_throughput_vs_gflops(frame().drop(columns="clips_per_s"), tmp_path)
    with pytest.raises(TokbenchError, match="no results with status ok"):
        plot_throughput_vs_gflops(frame().assign(status="error"), tmp_path)
    with pytest.raises(TokbenchError, match="no accuracy records.*no clips_per_s column"):
        plot_all(frame().drop(columns="clips_per_s"), tmp_path)


def accuracy_frame(intervals=False):
    rows = []
    for dataset, metric in (("synth-a", "top1"), ("synth-m", "mAP"), ("synth-e", "action_top1")):
        rows.append({"dataset": dataset, "method": "none", "p_ratio": 1.0, "gflops": 0.2, metric: 0.8})
        rows += [{"dataset": dataset, "method": "random", "p_ratio": p, "gflops": 0.2 * p, metric: 0.8 * p}
                 for p in (0.25, 0.5)]
    df = pd.DataFrame(rows).assign(status="ok", backbone="tiny", privileged=False)
    df["method_id"] = df["method"]
    if intervals:
        for metric in ("top1", "mAP", "action_top1"):
            df[f"{metric}_lo"], df[f"{metric}_hi"] = df[metric] - 0.05, df[metric] + 0.1
    return df


def labelled(df):
    return _with_labels(headline_accuracy(df))


def test_accuracy_figure_has_a_panel_per_dataset(tmp_path):
    fig = accuracy_figure(labelled(accuracy_frame()))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["synth-a", "synth-e", "synth-m"]
    assert [ax.get_ylabel() for ax in visible] == ["top1 (%)", "action_top1 (%)", "mAP (%)"]
    # One row of panels: each names the axis and its FLOP convention (on two lines at this width).
    assert all(ax.get_xlabel() == GFLOPS_AXIS.replace(" (", "\n(") for ax in visible)
    line = next(ln for ln in visible[0].get_lines() if ln.get_label() == "random")
    assert list(line.get_ydata()) == pytest.approx([20.0, 40.0])
    assert fig.get_size_inches()[0] == pytest.approx(7.0)  # a two-column paper's text width
    fig.canvas.draw()
    assert inside_figure(fig, fig.legends[0]) and inside_figure(fig, fig._suptitle)
    assert all(fig.legends[0].get_window_extent().y1 <= ax.get_window_extent().y0 for ax in visible)  # below the data
    assert not visible[0].containers  # no intervals in the records, no error bars
    plt.close(fig)
    paths = plot_accuracy_vs_gflops(accuracy_frame(), tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_gflops.png", "accuracy_vs_gflops.pdf"]
    with pytest.raises(TokbenchError, match="no accuracy records"):
        plot_accuracy_vs_gflops(frame(), tmp_path)


def test_error_bars_from_the_records_intervals():
    fig = accuracy_figure(labelled(accuracy_frame(intervals=True)))
    ax = fig.axes[0]
    (bars,) = ax.containers
    segments = bars.lines[2][0].get_segments()  # one vertical segment per random point
    assert [tuple(np.round(s[:, 1], 6)) for s in segments] == [(15.0, 30.0), (35.0, 50.0)]
    plt.close(fig)


def test_p_labels_never_collide():
    # Two methods on the same points: each point gets at most one label, and no two labels overlap.
    df = accuracy_frame()
    df = df[df["dataset"] == "synth-a"]
    twin = df[df["method"] == "random"].assign(method="motion", method_id="motion")
    extra = pd.DataFrame([{"dataset": "synth-a", "method": "motion", "method_id": "motion", "p_ratio": 0.9,
                           "gflops": 0.1, "top1": 0.2, "status": "ok", "backbone": "tiny", "privileged": False}])
    fig = accuracy_figure(labelled(pd.concat([df, twin, extra], ignore_index=True)))
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text() in ("0.25", "0.5", "0.9")]
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert sorted(t.get_text() for t in texts) == ["0.25", "0.25", "0.5", "0.5", "0.9"]  # room beside each
    assert all(ax.get_window_extent(renderer).contains(b.x0, b.y0) for b in boxes)
    # Crowded: 30 labels around one spot cannot all be placed.
    crowd = [{"ax": ax, "x": 0.1, "y": 20.0, "text": f"{i}", "color": "k", "priority": (i,)} for i in range(30)]
    placed = place_labels(fig, crowd)
    assert 1 <= len(placed) < 30
    plt.close(fig)


def test_highlight_greys_the_other_methods():
    df = pd.concat([accuracy_frame(), accuracy_frame().query("method == 'random'").assign(method="tome", method_id="tome")])
    fig = accuracy_figure(labelled(df), highlight=["tome"])
    ax = fig.axes[0]
    random, tome = (next(ln for ln in ax.get_lines() if ln.get_label() == m) for m in ("random", "tome"))
    assert random.get_color() == "0.72" and tome.get_color() != "0.72"
    texts = fig.legends[0].get_texts()
    assert [t.get_text() for t in texts][-1] == "other methods" and "random" not in [t.get_text() for t in texts]
    plt.close(fig)
    with pytest.raises(TokbenchError, match="--highlight 'lookwhen': no such method"):
        accuracy_figure(labelled(df), highlight=["lookwhen"])


def test_x_relative_and_log(tmp_path):
    fig = accuracy_figure(labelled(accuracy_frame()), x="relative")
    ax = fig.axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "random")
    assert list(line.get_xdata()) == pytest.approx([25.0, 50.0])  # % of the full model's 0.2 GFLOPs
    assert ax.get_xlabel() == RELATIVE_AXIS.replace(" (", "\n(")
    plt.close(fig)
    fig = accuracy_figure(labelled(accuracy_frame()), x="log")
    assert fig.axes[0].get_xscale() == "log"
    plt.close(fig)
    with pytest.raises(TokbenchError, match="--x relative needs the full model"):
        plot_accuracy_vs_gflops(accuracy_frame().query("method != 'none'"), tmp_path, x="relative")
    with pytest.raises(TokbenchError, match="--x 'flops': choose one of gflops, relative, log"):
        plot_all(accuracy_frame(), tmp_path, x="flops")


def test_one_dataset_figure_at_column_width(tmp_path):
    paths = plot_accuracy_per_dataset(accuracy_frame(), tmp_path)
    assert sorted(paths) == ["synth-a", "synth-e", "synth-m"]
    assert [p.name for p in paths["synth-a"]] == ["accuracy_vs_gflops_synth-a.png", "accuracy_vs_gflops_synth-a.pdf"]
    fig = accuracy_figure(labelled(accuracy_frame().query("dataset == 'synth-a'")))
    assert fig.get_size_inches()[0] == pytest.approx(3.4) and fig.axes[0].get_xlabel() == GFLOPS_AXIS
    fig.canvas.draw()
    assert inside_figure(fig, fig.legends[0]) and fig._suptitle is None  # the panel title names it
    plt.close(fig)


def test_pareto_front_leaves_out_privileged_methods_and_throughput_figure(tmp_path):
    df = accuracy_frame()
    oracle = df[df["method"] == "random"].assign(method="oracle", method_id="oracle", privileged=True)
    oracle["top1"] = oracle["top1"] + 0.15  # better than everything, but it reads labels
    df = pd.concat([df, oracle], ignore_index=True)
    df["clips_per_s"] = 10 / df["gflops"]
    fig = accuracy_figure(labelled(df))
    ax = fig.axes[0]
    front = next(ln for ln in ax.get_lines() if ln.get_label().startswith("Pareto front"))
    # Front of synth-a: random 0.25 (0.05 GF, 20 %), random 0.5 (0.1, 40 %), full (0.2, 80 %).
    assert list(front.get_xdata())[0] == pytest.approx(0.05) and max(front.get_ydata()) == pytest.approx(80.0)
    assert min(front.get_ydata()) == pytest.approx(20.0)
    oracle_line = next(ln for ln in ax.get_lines() if ln.get_label() == "oracle")
    assert oracle_line.get_linestyle() == "--"
    plt.close(fig)
    paths = plot_accuracy_vs_throughput(df, tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_throughput.png", "accuracy_vs_throughput.pdf"]
    two = pd.concat([df.assign(**{"env.device_name": "A"}), df.assign(**{"env.device_name": "B"},
                                                                      cell_id=lambda d: "b" + d.index.astype(str))])
    names = [p.name for p in plot_accuracy_vs_throughput(two, tmp_path / "two")]
    assert names == ["accuracy_vs_throughput_a.png", "accuracy_vs_throughput_a.pdf", "accuracy_vs_throughput_b.png",
                     "accuracy_vs_throughput_b.pdf"]
