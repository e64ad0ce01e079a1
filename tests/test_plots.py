"""Plot content on hand-made results frames (no torch, no measurement)."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from tokbench.errors import TokbenchError
from tokbench.report.plots import (
    GFLOPS_AXIS,
    _with_labels,
    method_style,
    plot_throughput_vs_gflops,
    throughput_figure,
)


def frame(device="CPU X", batch=1):
    rows = [("none", 1.0, 100.0, 2.0)] + [("random", p, 100.0 * p, 2.0 / p * 0.9) for p in (0.25, 0.5, 0.75)]
    return pd.DataFrame([
        {"status": "ok", "backbone": "vit", "method": m, "method_id": m, "p_ratio": p, "gflops": g,
         "clips_per_s": c, "privileged": False, "env.device_name": device, "batch_size": batch}
        for m, p, g, c in rows
    ])


def test_figure_has_full_model_star_ideal_curve_and_method_line():
    fig = throughput_figure("vit", _with_labels(frame()))
    ax = fig.axes[0]
    _, labels = ax.get_legend_handles_labels()
    assert labels == ["none (full model)", "ideal: time ∝ FLOPs", "random"]
    assert ax.get_xlabel() == GFLOPS_AXIS == "GFLOPs per view (fvcore: 1 multiply-add = 1 FLOP)"
    ideal = next(line for line in ax.get_lines() if line.get_label() == "ideal: time ∝ FLOPs")
    x, y = ideal.get_data()
    assert (x * y) == pytest.approx(200.0)  # full model: 2 clips/s at 100 GFLOPs
    random = next(line for line in ax.get_lines() if line.get_label() == "random")
    assert list(random.get_xdata()) == [25.0, 50.0, 75.0]  # sorted by measured cost
    assert "CPU X, batch 1" in ax.get_title()
    plt.close(fig)


def test_devices_are_never_mixed_on_one_line():
    both = pd.concat([frame("CPU X", 1), frame("GPU Y", 8)], ignore_index=True)
    fig = throughput_figure("vit", _with_labels(both))
    _, labels = fig.axes[0].get_legend_handles_labels()
    assert "random [CPU X, batch 1]" in labels and "random [GPU Y, batch 8]" in labels
    plt.close(fig)


def test_styles_are_fixed_per_method():
    assert method_style("random") == method_style("random")
    assert method_style("none")["color"] != method_style("random")["color"]
    assert method_style("none")["marker"] == "*"


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


def accuracy_frame():
    rows = []
    for dataset, metric in (("synth-a", "top1"), ("synth-m", "mAP"), ("synth-e", "action_top1")):
        rows.append({"dataset": dataset, "method": "none", "p_ratio": 1.0, "gflops": 0.2, metric: 0.8})
        rows += [{"dataset": dataset, "method": "random", "p_ratio": p, "gflops": 0.2 * p, metric: 0.8 * p}
                 for p in (0.25, 0.5)]
    df = pd.DataFrame(rows).assign(status="ok", backbone="tiny", privileged=False)
    df["method_id"] = df["method"]
    return df


def test_headline_accuracy_takes_each_dataset_metric():
    from tokbench.report.plots import with_headline_accuracy

    df = with_headline_accuracy(accuracy_frame())
    assert df.groupby("dataset")["accuracy_metric"].first().to_dict() == {
        "synth-a": "top1", "synth-e": "action_top1", "synth-m": "mAP"}
    assert df["accuracy"].notna().all()


def test_accuracy_figure_has_a_panel_per_dataset(tmp_path):
    from tokbench.report.plots import accuracy_figure, plot_accuracy_vs_gflops, with_headline_accuracy

    fig = accuracy_figure(_with_labels(with_headline_accuracy(accuracy_frame())))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["synth-a", "synth-e", "synth-m"]
    assert [ax.get_ylabel() for ax in visible] == ["top1 (%)", "action_top1 (%)", "mAP (%)"]
    assert all(ax.get_xlabel() == GFLOPS_AXIS for ax in visible)
    line = next(ln for ln in visible[0].get_lines() if ln.get_label() == "random")
    assert list(line.get_ydata()) == pytest.approx([20.0, 40.0])
    plt.close(fig)
    paths = plot_accuracy_vs_gflops(accuracy_frame(), tmp_path)
    assert [p.name for p in paths] == ["accuracy_vs_gflops.png", "accuracy_vs_gflops.pdf"]
    with pytest.raises(TokbenchError, match="no accuracy records"):
        plot_accuracy_vs_gflops(frame(), tmp_path)


def test_pareto_front_leaves_out_privileged_methods_and_throughput_figure(tmp_path):
    from tokbench.report.plots import accuracy_figure, plot_accuracy_vs_throughput, with_headline_accuracy

    df = accuracy_frame()
    oracle = df[df["method"] == "random"].assign(method="oracle", method_id="oracle", privileged=True)
    oracle["top1"] = oracle["top1"] + 0.15  # better than everything, but it reads labels
    df = pd.concat([df, oracle], ignore_index=True)
    df["clips_per_s"] = 10 / df["gflops"]
    fig = accuracy_figure(_with_labels(with_headline_accuracy(df)))
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
