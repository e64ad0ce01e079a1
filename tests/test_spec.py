import re

import pytest

from tokbench.benchmark.spec import cell_key, parse_metrics, parse_p_ratios
from tokbench.errors import SpecError


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0.1:0.9", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
        ("0.1:0.9:0.2", [0.1, 0.3, 0.5, 0.7, 0.9]),
        ("0.3,0.5,0.7", [0.3, 0.5, 0.7]),
        ("0.5", [0.5]),
        ("1", [1.0]),
        ("0.25:1:0.25", [0.25, 0.5, 0.75, 1.0]),
        ("0.1:0.5:0.3", [0.1, 0.4]),  # stop not on the grid: last whole step
        (" 0.7, 0.3 ,0.7", [0.7, 0.3]),  # order kept, duplicates dropped
    ],
)
def test_p_ratio_syntax(text, expected):
    assert parse_p_ratios(text) == expected


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("0:0.5", "0 is outside (0, 1]"),
        ("1.5", "1.5 is outside (0, 1]"),
        ("-0.1", "outside (0, 1]"),
        ("0.1:0.9:0", "step must be > 0"),
        ("0.1:0.9:-0.1", "step must be > 0"),
        ("0.9:0.1", "start 0.9 is greater than stop 0.1"),
        ("0.1:0.2:0.3:0.4", "start:stop or start:stop:step"),
        ("abc", "'abc' is not a number"),
        ("0.1,,0.2", "'' is not a number"),
        ("", "empty --p-ratio"),
        ("inf", "must be finite"),
    ],
)
def test_p_ratio_errors(text, fragment):
    with pytest.raises(SpecError) as e:
        parse_p_ratios(text)
    assert fragment in str(e.value)


def test_metrics():
    assert parse_metrics("throughput,flops") == ("flops", "throughput")
    with pytest.raises(SpecError, match="unknown metric 'acc'"):
        parse_metrics("flops,acc")
    with pytest.raises(SpecError, match="empty --metrics"):
        parse_metrics(" , ")


def test_cell_key_is_stable_and_order_free():
    a = cell_key({"method": "random", "p": 0.5, "params": {"seed": 0, "x": 1}})
    assert a == cell_key({"params": {"x": 1, "seed": 0}, "p": 0.5, "method": "random"})
    assert a != cell_key({"method": "random", "p": 0.6, "params": {"seed": 0, "x": 1}})
    assert re.fullmatch(r"[0-9a-f]{16}", a)


def test_parse_seeds():
    from tokbench.benchmark.spec import parse_seeds

    assert parse_seeds("0, 1,2") == (0, 1, 2) and parse_seeds("7") == (7,)
    for bad, message in (("", "empty --seeds"), ("1,x", "'x' is not a seed"), ("-1", "'-1' is not a seed"),
                         ("1,1", "seed 1 is given twice"), (str(2**63), "is not a seed")):
        with pytest.raises(SpecError, match=message):
            parse_seeds(bad)


def test_seeds_expand_only_the_stochastic_methods_that_do_not_set_one():
    from tokbench.benchmark.runner import Sweep, plan

    sweep = Sweep(backbones=("test_tiny",), methods=("none", "random", "random(seed=7)", "tome"), p_ratios=(0.5,),
                  metrics=("flops",), device="cpu", method_seeds=(0, 1, 2))
    ids = [c.method_id for c in plan(sweep)]
    assert ids == ["none", "random", "random(seed=1)", "random(seed=2)", "random(seed=7)", "tome"]
