"""The public table functions on hand-made results frames: headline accuracy, Pareto front,
best at a budget (ties by intervals or exact), method x P grids, and their export."""

from __future__ import annotations

import pandas as pd
import pytest

import tokbench
from tokbench.errors import TokbenchError
from tokbench.report.tables import (
    best_at_budget,
    headline_accuracy,
    latex_table,
    leaderboard_grid,
    markdown_table,
    method_grid,
    number_text,
    pareto_front,
    write_table,
)


def cells(rows, dataset="d", **extra):
    """Records: (method, P, GFLOPs, top1[, lo, hi])."""
    out = []
    for row in rows:
        method, p, g, a, *interval = row
        r = {"cell_id": f"{dataset}-{method}-{p}", "status": "ok", "dataset": dataset, "backbone": "tiny",
             "method": method.split("(")[0], "method_id": method, "p_ratio": p, "gflops": g, "top1": a,
             "privileged": method == "oracle", "created_utc": "2026-01-01", **extra}
        if interval:
            r["top1_lo"], r["top1_hi"] = interval
        out.append(r)
    return pd.DataFrame(out)


PANEL = cells([("none", 1.0, 1.0, 0.9), ("a", 0.1, 0.1, 0.6), ("a", 0.3, 0.3, 0.8), ("b", 0.1, 0.1, 0.6),
               ("b", 0.25, 0.25, 0.7), ("oracle", 0.1, 0.05, 0.99)])


def test_public_functions_are_exported():
    assert tokbench.best_at_budget is best_at_budget and tokbench.pareto_front is pareto_front
    assert tokbench.headline_accuracy is headline_accuracy


def test_headline_accuracy_and_its_interval():
    df = pd.DataFrame([{"top1": 0.5, "top1_lo": 0.4, "top1_hi": 0.6}, {"mAP": 0.7}, {"action_top1": 0.2, "top1": None}])
    out = headline_accuracy(df)
    assert out["accuracy"].tolist() == [0.5, 0.7, 0.2]
    assert out["accuracy_metric"].tolist() == ["top1", "mAP", "action_top1"]
    assert out["accuracy_lo"].tolist()[0] == 0.4 and out["accuracy_hi"].isna().tolist() == [False, True, True]


def test_best_at_budget_exact_ties_without_intervals():
    best = best_at_budget(PANEL, budgets=(10, 30, 100)).set_index("budget_pct")
    # 10 %: a and b both reach 0.6 at 0.1 GFLOPs; the oracle (privileged) is never ranked.
    assert best.loc[10, "method_id"] == "a" and best.loc[10, "tied_with"] == "b"
    assert best.loc[30, "method_id"] == "a" and best.loc[30, "tied_with"] == "" and best.loc[30, "p_ratio"] == 0.3
    assert best.loc[30, "gflops_pct"] == pytest.approx(30.0) and best.loc[30, "candidates"] == 2
    assert best.loc[100, "method_id"] == "none"
    assert "only exactly equal accuracies tie" in best.loc[10, "tie_rule"]
    grid = leaderboard_grid(best.reset_index())
    assert grid.columns.tolist() == ["dataset", "≤ 10 % GFLOPs", "≤ 30 % GFLOPs", "≤ 100 % GFLOPs"]
    assert grid.iloc[0, 0] == "d (top1)" and grid.iloc[0, 1] == "**a** 60.0 (P 0.1, 10 %) = **b**"


def test_best_at_budget_ties_when_intervals_overlap():
    wide = cells([("none", 1.0, 1.0, 0.9, 0.88, 0.92), ("a", 0.3, 0.3, 0.8, 0.75, 0.85),
                  ("b", 0.25, 0.25, 0.7, 0.6, 0.76), ("c", 0.2, 0.2, 0.5, 0.45, 0.55)])
    row = best_at_budget(wide, budgets=(30,)).iloc[0]
    assert row["method_id"] == "a" and row["tied_with"] == "b"  # [0.6, 0.76] overlaps [0.75, 0.85]; c's does not
    assert "interval" in row["tie_rule"] and row["accuracy_lo"] == 0.75
    apart = wide.assign(top1_hi=wide["top1_hi"].where(wide["method_id"] != "b", 0.74))
    assert best_at_budget(apart, budgets=(30,)).iloc[0]["tied_with"] == ""
    assert "80.0 ± 5.0" in leaderboard_grid(best_at_budget(wide, budgets=(30,))).iloc[0, 1]


def test_best_at_budget_on_repeated_runs_and_odd_panels():
    # A folder holding a repeated run: every cell twice, the newer better; the index repeats.
    again = PANEL.assign(created_utc="2026-02-01", top1=PANEL["top1"] + 0.05)
    twice = pd.concat([PANEL, again])
    assert twice.index.duplicated().any()
    best = best_at_budget(twice, budgets=(30,)).iloc[0]
    assert best["accuracy"] == pytest.approx(0.85)
    # A panel without the full model cannot set a budget; a budget no point fits is empty.
    other = cells([("a", 0.1, 0.1, 0.5)], dataset="e")
    best = best_at_budget(pd.concat([PANEL, other]), budgets=(5,))
    assert best["dataset"].tolist() == ["d"] and best["method_id"].tolist() == [""]
    assert leaderboard_grid(best).iloc[0, 1] == "–"
    with pytest.raises(TokbenchError, match="budget 0 is not a percent"):
        best_at_budget(PANEL, budgets=(0,))


def test_pareto_front_of_each_panel():
    five = cells([("none", 1.0, 1.0, 0.9), ("a", 0.1, 0.1, 0.6), ("a", 0.5, 0.5, 0.55), ("b", 0.3, 0.3, 0.8),
                  ("oracle", 0.1, 0.05, 0.99)])
    front = pareto_front(pd.concat([five, cells([("a", 0.2, 0.2, 0.4)], dataset="e")]))
    assert front[front["dataset"] == "d"][["method_id", "p_ratio"]].values.tolist() == [["a", 0.1], ["b", 0.3],
                                                                                       ["none", 1.0]]
    assert front[front["dataset"] == "e"]["method_id"].tolist() == ["a"]
    with pytest.raises(TokbenchError, match="x must be"):
        pareto_front(five, x="tokens")


def test_method_grid_shows_unreachable_cells_with_their_reason_and_intervals():
    df = pd.concat([cells([("none", 1.0, 1.0, 0.9, 0.85, 0.95), ("a", 0.5, 0.5, 0.8, 0.7, 0.9),
                           ("a", 0.1, 0.1, 0.3, 0.2, 0.4)]),
                    pd.DataFrame([{"cell_id": "x", "status": "unreachable", "dataset": "d", "backbone": "tiny",
                                   "method": "tome", "method_id": "tome", "p_ratio": 0.1,
                                   "error": "tome: P-Ratio 0.1 needs 1 GFLOPs but merging cannot go below 2 GFLOPs"}])])
    shown, raw, notes = method_grid(df, "accuracy")
    assert shown.columns.tolist() == ["method", "P 0.1", "P 0.5", "P 1"]
    rows = shown.set_index("method")
    assert rows.loc["a", "P 0.5"] == "**80.0 ± 10.0**" and rows.loc["none", "P 1"] == "**90.0 ± 5.0**"
    assert rows.loc["tome", "P 0.1"] == "unreachable [1]" and rows.loc["tome", "P 0.5"] == ""
    assert notes == ["tome unreachable at P = 0.1: P-Ratio 0.1 needs 1 GFLOPs but merging cannot go below 2 GFLOPs"]
    assert raw.set_index("method").loc["a", "P 0.5"] == 80.0 and raw.set_index("method").loc["tome", "P 0.1"] == "unreachable"
    cost, _, _ = method_grid(df.assign(clips_per_s=250.0), "cost")
    assert cost.set_index("method").loc["a", "P 0.5"] == "0.5 / 250"


def test_text_tables_and_numbers(tmp_path):
    assert [number_text(v) for v in (1568.0, 3, 0.123456, float("nan"), None, "x")] == ["1568", "3", "0.1235", "", "", "x"]
    frame = pd.DataFrame([{"method": "a_b", "acc (%)": "**50.0 ± 1.0**", "n": 2.0}, {"method": "x|y", "acc (%)": "–",
                                                                                       "n": 3}])
    assert markdown_table(frame).splitlines() == ["| method | acc (%) | n |", "|---|---|---|",
                                                  "| a_b | **50.0 ± 1.0** | 2 |", "| x\\|y | – | 3 |"]
    tex = latex_table(frame, "Top-1 & cost")
    assert r"\caption{Top-1 \& cost}" in tex and r"a\_b & \textbf{50.0 $\pm$ 1.0} & 2 \\" in tex
    assert r"acc (\%)" in tex and "\\begin{tabular}{lrr}" in tex and "x|y & -- & 3" in tex
    paths = write_table(tmp_path / "t", "demo", frame, raw=frame.assign(n=[2.5, 1 / 3]), caption="Demo", notes=["[1] why"])
    assert [p.name for p in paths] == ["demo.csv", "demo.md", "demo.tex"]
    assert paths[0].read_text().splitlines()[1:] == ["a_b,**50.0 ± 1.0**,2.5", "x|y,–,0.3333333333"]
    assert paths[1].read_text().startswith("Demo\n\n| method |") and "[1] why" in paths[1].read_text()


def test_cost_grid_says_which_device_each_throughput_comes_from():
    df = cells([("none", 1.0, 1.0, 0.9), ("a", 0.5, 0.5, 0.8)]).assign(clips_per_s=[100.0, 180.0])
    shown, _, notes = method_grid(df.assign(**{"env.device_name": "CPU A"}), "cost")
    assert shown.set_index("method").loc["a", "P 0.5"] == "0.5 / 180" and notes == []
    two = df.assign(**{"env.device_name": ["CPU A", "GPU B"]}, batch_size=1)
    shown, _, notes = method_grid(two, "cost")
    rows = shown.set_index("method")
    assert rows.loc["none", "P 1"] == "1 / 100 (A)" and rows.loc["a", "P 0.5"] == "0.5 / 180 (B)"
    assert notes == ["(A) clips/s measured on CPU A, batch 1", "(B) clips/s measured on GPU B, batch 1"]
