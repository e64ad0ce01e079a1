"""Which records plot/report/check use: own runs by default, curated copies left out and listed,
the newest record per cell (one rule everywhere), refusals when a comparison would mix clip
counts, throughput kept apart per device, and what is said about it."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.errors import TokbenchError
from tokbench.report.check import latest_by_cell
from tokbench.report.selection import (
    newest_per_cell,
    newest_positions,
    record_files,
    select_records,
    select_results,
    speed_label,
)


def record(cell, *, run="r1", t="2026-01-01T00:00:00", clips=500, device="CPU A", revision="aaaaaaa1", top1=0.5,
           method="random", p=0.5, dataset="synth-motion", **extra):
    return {"cell_id": cell, "run_id": run, "created_utc": t, "status": "ok", "dataset": dataset, "backbone": "tiny",
            "method": method, "method_id": method, "p_ratio": p, "gflops": p, "top1": top1, "clips": clips,
            "clips_per_s": 100.0, "batch_size": 1, "privileged": False,
            "env": {"device_name": device, "git_revision": revision}, **extra}


def write(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def results(tmp_path):
    """A results folder as a clone has it after one run: the user's run, and two curated copies."""
    root = tmp_path / "results"
    write(root / "runs" / "host" / "a.jsonl", [record("c1"), record("c2", p=0.25)])
    write(root / "synthetic" / "default.jsonl", [record("c1", run="committed", top1=0.1)])
    write(root / "baseline" / "baseline.jsonl", [record("c3", run="ci", clips=16)])
    return root


def test_own_runs_are_read_and_curated_copies_listed(results):
    used, left_out = record_files(results)
    assert [p.relative_to(results).as_posix() for p in used] == ["runs/host/a.jsonl"]
    assert sorted(p.name for p in left_out) == ["baseline", "synthetic"]
    selection = select_results([results])
    assert sorted(selection.frame["cell_id"]) == ["c1", "c2"] and selection.frame["top1"].tolist() == [0.5, 0.5]
    assert selection.left_out == {str(results / "baseline"): 1, str(results / "synthetic"): 1}
    described = "\n".join(selection.describe())
    assert "left out curated copies" in described and "synthetic (1 records)" in described
    # Named, a copy is used; files directly in the named folder are that folder's own.
    copy = select_results([results / "synthetic"])
    assert copy.frame["run_id"].tolist() == ["committed"] and not copy.left_out


def test_a_folder_of_copies_only_is_refused_with_their_names(tmp_path):
    write(tmp_path / "r" / "synthetic" / "x.jsonl", [record("c1")])
    write(tmp_path / "r" / "baseline" / "y.jsonl", [record("c2", clips=16)])
    with pytest.raises(TokbenchError, match=r"no records of your own runs .* curated copies: .*baseline.*synthetic"):
        select_results([tmp_path / "r"])
    with pytest.raises(TokbenchError, match="curated copies"):
        select_records(tmp_path / "r")


def test_newest_record_of_a_cell_one_rule_for_lists_and_frames():
    recs = [record("a", t="2026-01-02", top1=0.2), record("a", t="2026-01-01", top1=0.1), record("b", t=None, top1=0.3),
            record("b", t="2026-01-01", top1=0.4), record("c", t="2026-01-01", top1=0.5),
            record("c", t="2026-01-01", top1=0.6)]
    cells = [r["cell_id"] for r in recs]
    # a: the later stamp wins over reading order; b: a missing stamp is the oldest; c: equal stamps, the later read.
    assert newest_positions(cells, [r["created_utc"] for r in recs]) == [0, 3, 5]
    assert newest_positions([None, "x", float("nan")], [None, None, None]) == [0, 1, 2]  # non-cells are kept
    assert {k: r["top1"] for k, r in latest_by_cell(recs).items()} == {"a": 0.2, "b": 0.4, "c": 0.6}
    frame = pd.json_normalize(recs)
    # A frame glued from repeated runs has a repeating index: positions, not labels, decide.
    glued = pd.concat([frame.iloc[:3], frame.iloc[3:].reset_index(drop=True)])
    assert glued.index.duplicated().any()
    newest = newest_per_cell(glued)
    assert newest["top1"].tolist() == [0.2, 0.4, 0.6] and newest.index.tolist() == [0, 1, 2]


def test_repeated_runs_use_the_newest_and_say_so(tmp_path):
    write(tmp_path / "runs" / "h" / "1.jsonl", [record("c1", run="20260101-old", t="2026-01-01", top1=0.1),
                                                record("c2", run="20260101-old", t="2026-01-01")])
    write(tmp_path / "runs" / "h" / "2.jsonl", [record("c1", run="20260102-new", t="2026-01-02", top1=0.9,
                                                       revision="bbbbbbb2+dirty", device="CPU B")])
    selection = select_results([tmp_path])
    assert selection.read == 3 and selection.superseded == 1 and len(selection.frame) == 2
    lines = selection.describe()
    text = "\n".join(lines)
    assert lines[0].startswith("used 2 records of") and "1 older record(s) of cells measured again not used" in lines[0]
    assert "run 20260101-old" in text and "run 20260102-new" in text and "CPU B" in text
    assert "records of 2 runs are combined" in text and "2 revisions are combined (aaaaaaa, bbbbbbb+dirty)" in text
    assert "throughput was measured on 2 devices" in text and "--speed-device" in text
    assert "clips per cell: 500 on every dataset (synth-motion)" in text
    # --run picks runs before the newest record is taken: the old run alone, by a unique prefix.
    old = select_results([tmp_path], runs=["20260101"])
    assert old.frame.set_index("cell_id")["top1"].to_dict() == {"c1": 0.1, "c2": 0.5}
    assert select_results([tmp_path], runs=["latest"]).frame["run_id"].unique().tolist() == ["20260102-new"]
    with pytest.raises(TokbenchError, match=r"--run '2026' matches 2 runs"):
        select_results([tmp_path], runs=["2026"])


def test_a_dataset_mixing_clip_counts_is_refused_naming_clips(tmp_path):
    write(tmp_path / "runs" / "h" / "a.jsonl", [record("c1"), record("c2", p=0.25), record("s1", clips=16, p=0.75),
                                                record("m1", dataset="synth-gesture", clips=16)])
    with pytest.raises(TokbenchError) as e:
        select_results([tmp_path])
    message = str(e.value)
    assert "synth-motion has cells evaluated on 16 clips (1 cells) and 500 clips (2 cells)" in message
    assert "--clips 16 or --clips 500" in message and "\n" not in message
    assert sorted(select_results([tmp_path], clips=[500]).frame["cell_id"]) == ["c1", "c2"]
    assert sorted(select_results([tmp_path], dataset=("synth-gesture",)).frame["cell_id"]) == ["m1"]
    with pytest.raises(TokbenchError, match="--clips 7: no cells evaluated on 7 clips; the results have: 16, 500"):
        select_results([tmp_path], clips=[7])


def test_speed_device_keeps_one_device_throughput_and_every_accuracy(tmp_path):
    write(tmp_path / "runs" / "h" / "a.jsonl", [record("c1", device="CPU A"), record("c2", p=0.25, device="GPU B",
                                                                                      speed_device="GPU B")])
    picked = select_results([tmp_path], speed_device="GPU B").frame.set_index("cell_id")
    assert pd.isna(picked.loc["c1", "clips_per_s"]) and picked.loc["c2", "clips_per_s"] == 100.0
    assert picked["top1"].notna().all()  # accuracy and FLOPs do not depend on the machine
    with pytest.raises(TokbenchError, match=r"--speed-device 'TPU': no throughput measured on it; .*'CPU A', 'GPU B'"):
        select_results([tmp_path], speed_device="TPU")
    frame = pd.json_normalize([record("x", speed_device="GPU B", batch_size=8.0), record("y", compiled=True)])
    assert speed_label(frame).tolist() == ["GPU B, batch 8", "CPU A, batch 1, compiled"]


def test_plot_and_report_print_what_they_used(results, tmp_path):
    r = CliRunner().invoke(cli, ["plot", "--results", str(results), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert all(line.endswith((".png", ".pdf")) for line in r.stdout.splitlines())  # stdout: the files only
    assert "used 2 records of" in r.stderr and "run r1" in r.stderr and "left out curated copies" in r.stderr
    # Named together, copies are combined, and the 16-clip cell next to the 500-clip ones is refused.
    both = ["plot", "--results", str(results / "runs"), "--results", str(results / "baseline"), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(cli, both)
    assert r.exit_code == 2 and "--clips 16 or --clips 500" in r.stderr and r.stderr.count("\n") == 1
    r = CliRunner().invoke(cli, [*both, "--clips", "500"])
    assert r.exit_code == 0, r.output
    assert "used 2 records of" in r.stderr and "1 left out by the filters" in r.stderr


def test_report_without_options_reads_results_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["report", "--no-viz"])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1
    assert "results not found: results/runs: run 'tokbench run' first" in r.stderr
    write(tmp_path / "results" / "runs" / "host" / "a.jsonl",
          [record("n", method="none", p=1.0, top1=0.9), record("c1"), record("c2", p=0.25)])
    write(tmp_path / "results" / "synthetic" / "x.jsonl", [record("zz", method="tome", p=0.5)])
    r = CliRunner().invoke(cli, ["report", "--no-viz"])
    assert r.exit_code == 0, r.output
    assert "used 3 records of results/runs (3 read)" in r.stderr
    text = (tmp_path / "reports" / "report.md").read_text()
    assert "tome" not in text and "`results/runs`" in text


def test_check_prints_both_sides(results, tmp_path):
    r = CliRunner().invoke(cli, ["check", "--baseline", str(results / "synthetic"), "--results", str(results),
                                 "--no-speed"])
    assert "baseline: " in r.stderr and "current: " in r.stderr and "left out curated copies" in r.stderr
    assert r.stdout.startswith("**")  # the Markdown report alone on stdout


def test_clips_filter_keeps_the_unreachable_cells_of_the_kept_runs(tmp_path):
    unreachable = {"status": "unreachable", "clips": None, "top1": None, "gflops": None, "clips_per_s": None}
    write(tmp_path / "runs" / "h" / "a.jsonl", [record("big", run="full"), record("u-big", run="full", p=0.1, **unreachable),
                                                record("small", run="smoke", clips=16),
                                                record("u-small", run="smoke", p=0.1, **unreachable),
                                                record("cost", run="flops", dataset=None, clips=None)])
    kept = select_results([tmp_path], clips=[500]).frame["cell_id"].tolist()
    assert sorted(kept) == ["big", "cost", "u-big"]


def test_help_examples_never_merge_the_curated_copies():
    for command in ([], ["plot"], ["report"], ["check"]):
        text = CliRunner().invoke(cli, [*command, "--help"]).stdout
        assert "Example" in text and not re.search(r"--results results(\s|$)", text), command


def test_figure_options_on_the_command_line(results, tmp_path):
    out = str(tmp_path / "f")
    r = CliRunner().invoke(cli, ["plot", "--results", str(results), "--out", out, "--highlight", "random", "--x", "log"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["plot", "--results", str(results), "--out", out, "--highlight", "tome"])
    assert r.exit_code == 2 and "--highlight 'tome': no such method in the results; they have: random" in r.stderr
    r = CliRunner().invoke(cli, ["plot", "--results", str(results), "--out", out, "--x", "relative"])
    assert r.exit_code == 2 and "--x relative needs the full model's record (method none)" in r.stderr
