"""Dominance that survives the noise: the rule on hand-made panels, with a significance
oracle given as the set of (better, worse) point pairs a paired test would separate."""

from __future__ import annotations

import pandas as pd
import pytest

from tokbench.report.analysis import dominates, significance_summary, significant_dominance


def _panel(rows):
    return pd.DataFrame([dict(dataset=d, method=m, p_ratio=p, gflops=g, accuracy=a, cell_id=f"{d}/{m}/{p}")
                         for d, m, p, g, a in rows])


def _oracle(pairs):
    """better(p, q) is True exactly for the listed (p, q) cell pairs."""
    return lambda p, q: (p["cell_id"], q["cell_id"]) in pairs


A = [("x", "a", 0.3, 1.0, 0.62), ("x", "a", 0.6, 2.0, 0.80)]
B = [("x", "b", 0.3, 1.0, 0.60), ("x", "b", 0.6, 2.0, 0.78)]


def test_dominance_without_noise_is_a_tie_with_it():
    df = _panel(A + B)
    a, b = df[df.method == "a"], df[df.method == "b"]
    assert dominates(a, b)  # point estimates: a is 2 points better everywhere
    none_separated = _oracle(set())
    assert significant_dominance(a, b, none_separated) == "tie"
    assert significant_dominance(b, a, none_separated) == "tie"
    claims, ties = significance_summary(df, none_separated)
    assert claims == [] and ties == ["a and b are indistinguishable on 1 of 1 panels (x)"]


def test_one_significant_point_and_none_against_is_dominance():
    df = _panel(A + B)
    a, b = df[df.method == "a"], df[df.method == "b"]
    better = _oracle({("x/a/0.6", "x/b/0.6")})
    assert significant_dominance(a, b, better) == "dominates"
    assert significant_dominance(b, a, better) is None  # b's match at 0.6 is significantly worse
    claims, ties = significance_summary(df, better)
    assert claims == ["a Pareto-dominates b on 1 of 1 panels (x)"] and ties == []


def test_a_point_significantly_better_than_its_match_breaks_dominance():
    df = _panel(A + B)
    better = _oracle({("x/a/0.6", "x/b/0.6"), ("x/b/0.3", "x/a/0.3")})
    assert significant_dominance(df[df.method == "a"], df[df.method == "b"], better) is None


def test_a_point_with_nothing_as_cheap_cannot_be_dominated():
    df = _panel(A[1:] + B)  # a has no point as cheap as b's at 1.0 GFLOPs
    assert significant_dominance(df[df.method == "a"], df[df.method == "b"], _oracle(set())) is None


def test_the_match_is_the_most_accurate_point_at_no_more_cost():
    df = _panel([("x", "a", 0.3, 1.0, 0.70), ("x", "a", 0.2, 0.5, 0.50), ("x", "b", 0.3, 1.2, 0.65)])
    seen = []

    def better(p, q):
        seen.append((p["cell_id"], q["cell_id"]))
        return False

    significant_dominance(df[df.method == "a"], df[df.method == "b"], better)
    assert seen == [("x/b/0.3", "x/a/0.3"), ("x/a/0.3", "x/b/0.3")]


def test_seed_variants_pool_into_one_point_with_an_envelope_interval():
    from tokbench.report.significance import base_method_id, pool_seeds

    assert [base_method_id(m) for m in ("random(seed=2)", "random(x=1, seed=2)", "random(seed=2, x=1)", "tome(r=3)")] \
        == ["random", "random(x=1)", "random(x=1)", "tome(r=3)"]
    rows = [dict(dataset="x", backbone="b", method="random", method_id=mid, p_ratio=0.3, status="ok", cell_id=cid,
                 top1=acc, top1_lo=acc - 0.1, top1_hi=acc + 0.1, gflops=1.0)
            for mid, cid, acc in (("random", "c0", 0.6), ("random(seed=1)", "c1", 0.7), ("random(seed=2)", "c2", 0.8))]
    rows.append(dict(dataset="x", backbone="b", method="none", method_id="none", p_ratio=1.0, status="ok", cell_id="n",
                     top1=0.9, top1_lo=0.85, top1_hi=0.95, gflops=3.0))
    pooled = pool_seeds(pd.DataFrame(rows))
    assert len(pooled) == 2
    r = pooled[pooled.method == "random"].iloc[0]
    assert r["method_id"] == "random" and r["seeds"] == "0,1,2" and r["cell_ids"] == ["c0", "c1", "c2"]
    assert r["top1"] == pytest.approx(0.7) and (r["top1_lo"], r["top1_hi"]) == pytest.approx((0.5, 0.9))
    assert pooled[pooled.method == "none"].iloc[0]["seeds"] == ""


def test_the_paired_oracle_reads_the_stored_predictions(tmp_path):
    import numpy as np

    from tokbench.predictions import PredictionWriter
    from tokbench.report.significance import paired_oracle, pool_seeds, prediction_finder

    def write(cell, correct):
        scores = np.zeros((100, 8))
        scores[np.arange(100), np.where(correct, 0, 1)] = 1.0  # class 0 is every clip's label
        with PredictionWriter(tmp_path, cell, "r") as w:
            w.append(list(range(100)), [f"val-{i}" for i in range(100)], [0] * 100, scores)

    write("a" * 16, np.arange(100) < 60)  # right on 60
    write("b" * 16, np.arange(100) < 50)  # right on 50, all of them among A's 60
    frame = pd.DataFrame([dict(dataset="synth-gesture", backbone="t", method=m, method_id=m, p_ratio=0.5, status="ok",
                               cell_id=c * 16, top1=acc, gflops=1.0) for m, c, acc in (("a", "a", 0.6), ("b", "b", 0.5))])
    points = pool_seeds(frame).assign(accuracy_metric="top1")
    better = paired_oracle(prediction_finder([tmp_path / "runs"]))  # the runs folder: its parent holds predictions
    a, b = points.iloc[0], points.iloc[1]
    assert better(a, b) and not better(b, a) and not better(a, a)


def test_unsupported_claims_name_only_the_panels_the_test_does_not_back():
    from tokbench.report.analysis import dominance_summary, significant_panels, significant_wins, unsupported_claims

    on_y = [(("y",) + r[1:]) for r in A + B]
    df = _panel(A + B + on_y)  # a beats b by 2 points on both panels (point estimates)
    assert dominance_summary(df) == ["a Pareto-dominates b on 2 of 2 panels (x, y)"]
    better = _oracle({("x/a/0.6", "x/b/0.6")})  # the paired test separates them on x only
    wins = significant_wins(significant_panels(df, better))
    assert wins == {("a", "b"): ["x"]}
    assert unsupported_claims(df, wins) == ["a Pareto-dominates b on 1 of 2 panels (y)"]
    everywhere = _oracle({("x/a/0.6", "x/b/0.6"), ("y/a/0.6", "y/b/0.6")})
    assert unsupported_claims(df, significant_wins(significant_panels(df, everywhere))) == []
