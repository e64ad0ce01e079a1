"""A sweep across jobs: `tokbench run --launcher submitit`, with submitit's local executor."""

import pytest
from click.testing import CliRunner

from tokbench.benchmark.launch import deal
from tokbench.cli import cli
from tokbench.errors import TokbenchError
from tokbench.store import load_records

pytest.importorskip("submitit")

COST = ["run", "--backbone", "test_tiny", "--methods", "none,random,motion", "--p-ratio", "0.3,0.6",
        "--metrics", "flops", "--device", "cpu"]


def test_deal_spreads_cells_round_robin():
    assert deal(list("abcdefg"), 3) == [["a", "d", "g"], ["b", "e"], ["c", "f"]]
    assert deal(["a", "b"], 5) == [["a"], ["b"]]  # never an empty job
    with pytest.raises(TokbenchError, match="--jobs must be >= 1"):
        deal(["a"], 0)


def test_submitit_local_jobs_write_every_cell_once_and_resubmitting_resumes(tmp_path):
    results = tmp_path / "results"
    # Two cells measured beforehand in-process: the array gets only the other three.
    first = CliRunner().invoke(cli, [*COST[:4], "none,random", "--p-ratio", "0.3", "--metrics", "flops",
                                     "--device", "cpu", "--results", str(results)])
    assert first.exit_code == 0, first.output
    r = CliRunner().invoke(cli, [*COST, "--results", str(results), "--launcher", "submitit",
                                 "--submitit-cluster", "local", "--jobs", "2", "--wait"])
    assert r.exit_code == 0, r.output
    assert "submitted 2 job(s) for 3 of 5 cells" in r.stderr and "3 records written (3 ok)" in r.stderr
    records = load_records(results / "runs")
    assert sorted((x["method"], x["p_ratio"]) for x in records) == [
        ("motion", 0.3), ("motion", 0.6), ("none", 1.0), ("random", 0.3), ("random", 0.6)]  # each once
    assert len(list((results / "runs").rglob("*.jsonl"))) == 3  # the first run's file + one per job
    assert list((results / "submitit").glob("*_log.out"))  # submitit's job logs, beside the results
    again = CliRunner().invoke(cli, [*COST, "--results", str(results), "--launcher", "submitit",
                                     "--submitit-cluster", "local", "--wait"])
    assert again.exit_code == 0 and "nothing to submit: all 5 cells are in" in again.stderr
    assert len(load_records(results / "runs")) == 5


def test_submitit_bad_input_fails_before_submitting(tmp_path):
    r = CliRunner().invoke(cli, [*COST, "--methods", "rnadom", "--results", str(tmp_path), "--launcher", "submitit",
                                 "--submitit-cluster", "local"])
    assert r.exit_code == 2 and "Did you mean 'random'" in r.stderr
    assert not tmp_path.joinpath("submitit").exists()
    r = CliRunner().invoke(cli, [*COST, "--results", str(tmp_path), "--launcher", "submitit", "--jobs", "0"])
    assert r.exit_code == 2 and "--jobs" in r.stderr


def test_whole_groups_go_to_one_job_and_large_ones_are_halved_to_fill_the_jobs():
    from tokbench.benchmark.launch import deal_groups

    groups = [["a1", "a2", "a3", "a4"], ["b1", "b2"], ["c1"]]
    assert deal_groups(groups, 2) == [["a1", "a2", "a3", "a4"], ["b1", "b2", "c1"]]
    assert deal_groups(groups, 3) == [["a1", "a2", "a3", "a4"], ["b1", "b2"], ["c1"]]
    # four jobs, three groups: the largest is halved
    assert deal_groups(groups, 4) == [["a1", "a2"], ["a3", "a4"], ["b1", "b2"], ["c1"]]
    assert deal_groups([["x"]], 5) == [["x"]]
