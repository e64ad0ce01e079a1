"""Pareto front and result filters on hand-made frames; the plot command's filters."""

import pandas as pd
import pytest

from tokbench.errors import TokbenchError
from tokbench.report.pareto import filter_results, pareto_mask


def test_pareto_front_of_a_hand_made_set():
    # (cost, accuracy): (2, .6) is beaten by (2, .7); (3, .55) by (2, .7); duplicates both stay.
    cost = pd.Series([1, 2, 3, 2, 4, 1], index=list("abcdef"))
    acc = pd.Series([0.5, 0.6, 0.55, 0.7, 0.9, 0.5], index=list("abcdef"))
    assert pareto_mask(cost, acc).to_dict() == {"a": True, "b": False, "c": False, "d": True, "e": True, "f": True}
    # Throughput: more clips/s is cheaper, so the cost is its negative.
    speed = pd.Series([100.0, 50.0, 200.0])
    assert pareto_mask(-speed, pd.Series([0.8, 0.9, 0.5])).tolist() == [True, True, True]
    assert pareto_mask(-speed, pd.Series([0.8, 0.7, 0.5])).tolist() == [True, False, True]


def test_filter_results_keeps_the_asked_rows_and_names_valid_values():
    df = pd.DataFrame({"dataset": ["a", "a", "b"], "method": ["x", "y", "x"], "p_ratio": [0.1, 0.2, 0.3]})
    assert filter_results(df, dataset=("a",), method=None)["method"].tolist() == ["x", "y"]
    assert filter_results(df, dataset=("a", "b"), method=("x",))["dataset"].tolist() == ["a", "b"]
    with pytest.raises(TokbenchError, match="no results with method 'z'; the results have: x, y"):
        filter_results(df, method=("z",))
