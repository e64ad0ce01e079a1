"""Dominance that survives the noise: the rule on hand-made panels, with a significance
oracle given as the set of (better, worse) point pairs a paired test would separate."""

from __future__ import annotations

import pandas as pd

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
