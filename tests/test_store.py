"""The results store: one append-only JSONL file per invocation, flushed per record, loaded
into pandas; torn or foreign lines are reported and skipped."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest

from tokbench.store import RunWriter, StoreWarning, finished_cells, load_results, machine_name


def _record(cell_id: str, status: str = "ok", **extra) -> dict:
    return {
        "cell_id": cell_id, "status": status, "backbone": "test_tiny", "method": "random",
        "p_ratio": 0.5, "gflops": 1.25, "env": {"torch_version": "9.9", "device_name": "cpu x"},
        "method_params": {"seed": 3}, "tokens_per_block": [33.0, 17.0], **extra,
    }


def _write_jsonl(path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


# --------------------------------------------------------------------------- RunWriter


def test_writer_creates_nothing_until_first_append(tmp_path):
    results = tmp_path / "results"
    writer = RunWriter(results, "sweep")
    assert not results.exists()
    writer.close()  # closing without records still writes nothing
    assert not results.exists()
    with RunWriter(results, "sweep"):
        pass
    assert not results.exists()


def test_writer_flushes_each_record_before_close(tmp_path):
    writer = RunWriter(tmp_path, "sweep")
    first, second = _record("a"), _record("b", status="error", error="RuntimeError: x")
    writer.append(first)
    # readable by another reader while the writer still holds the file open
    assert writer.path.read_text(encoding="utf-8") == json.dumps(first, sort_keys=True) + "\n"
    writer.append(second)
    lines = writer.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [first, second]
    assert load_results(writer.path)["cell_id"].tolist() == ["a", "b"]
    writer.close()
    assert writer.path.read_text(encoding="utf-8").count("\n") == 2


def test_writer_path_layout_and_sanitised_name(tmp_path):
    with RunWriter(tmp_path, "my run/../ öh!") as writer:
        writer.append(_record("a"))
    rel = writer.path.relative_to(tmp_path)
    assert rel.parts[:2] == ("runs", machine_name())
    assert len(rel.parts) == 3  # the name cannot create folders
    m = re.fullmatch(r"(\d{8}T\d{6}Z)_(.+)_(\d+)-([0-9a-f]{6})\.jsonl", rel.parts[2])
    assert m is not None, rel.parts[2]
    assert m[2] == "my-run-..-h-"  # each run of other characters (" ", "/", "/ ö", "!") became one "-"
    assert int(m[3]) == os.getpid()
    assert writer.run_id == f"{m[1]}-{os.getpid()}-{m[4]}"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", machine_name())


def test_writer_empty_name_falls_back(tmp_path):
    with RunWriter(tmp_path, "") as writer:
        writer.append(_record("a"))
    assert re.fullmatch(r"\d{8}T\d{6}Z_sweep_\d+-[0-9a-f]{6}\.jsonl", writer.path.name)


def test_two_writers_never_share_a_file(tmp_path):
    a, b = RunWriter(tmp_path, "a"), RunWriter(tmp_path, "b")
    with a, b:
        a.append(_record("1"))
        b.append(_record("2"))
    assert a.path != b.path
    assert sorted(load_results(tmp_path)["cell_id"]) == ["1", "2"]


def test_two_sweeps_with_the_same_name_never_share_a_file(tmp_path):
    """Two invocations in one process (a notebook, a script looping over sweeps) with the
    default name, within the same second: each must get its own file and run id."""
    a, b = RunWriter(tmp_path, "sweep"), RunWriter(tmp_path, "sweep")
    with a:
        a.append(_record("1"))
    with b:
        b.append(_record("2"))
    assert a.run_id != b.run_id
    assert a.path != b.path
    assert [json.loads(line)["cell_id"] for line in a.path.read_text().splitlines()] == ["1"]


# --------------------------------------------------------------------------- load_results


def test_load_results_flattens_env_and_keeps_lists(tmp_path):
    with RunWriter(tmp_path / "runs_a", "x") as w:
        w.append(_record("a", latency_ms=[1.5, 2.5]))
        w.append(_record("b", p_ratio=0.7))
    df = load_results(tmp_path)
    assert len(df) == 2
    assert df["cell_id"].tolist() == ["a", "b"]
    assert df["env.torch_version"].tolist() == ["9.9", "9.9"]
    assert df["env.device_name"].tolist() == ["cpu x", "cpu x"]
    assert "env" not in df.columns
    assert df["method_params.seed"].tolist() == [3, 3]
    assert df["tokens_per_block"].tolist() == [[33.0, 17.0], [33.0, 17.0]]
    assert df.loc[0, "latency_ms"] == [1.5, 2.5]
    assert df["p_ratio"].tolist() == [0.5, 0.7]


def test_load_results_accepts_folder_file_and_list(tmp_path):
    one = tmp_path / "res" / "deep" / "er" / "one.jsonl"
    two = tmp_path / "elsewhere" / "two.jsonl"
    _write_jsonl(one, [json.dumps(_record("a")) + "\n", json.dumps(_record("b")) + "\n"])
    _write_jsonl(two, [json.dumps(_record("c")) + "\n"])
    (tmp_path / "res" / "notes.txt").write_text("not a record\n")  # only *.jsonl is read
    assert sorted(load_results(tmp_path / "res")["cell_id"]) == ["a", "b"]  # recursive
    assert load_results(two)["cell_id"].tolist() == ["c"]
    assert load_results(str(two))["cell_id"].tolist() == ["c"]
    assert sorted(load_results([one, two])["cell_id"]) == ["a", "b", "c"]
    assert sorted(load_results([str(tmp_path / "res"), two])["cell_id"]) == ["a", "b", "c"]
    assert sorted(load_results(tmp_path)["cell_id"]) == ["a", "b", "c"]


@pytest.mark.parametrize("where", ["empty", "missing", "empty_file"])
def test_load_results_empty(tmp_path, where):
    path = {"empty": tmp_path, "missing": tmp_path / "nope", "empty_file": tmp_path / "x.jsonl"}[where]
    if where == "empty_file":
        path.write_text("\n\n")
    df = load_results(path)
    assert isinstance(df, pd.DataFrame)
    assert len(df) == 0
    assert {"status", "backbone", "method", "p_ratio", "gflops", "clips_per_s"} <= set(df.columns)
    assert load_results([]).empty


@pytest.mark.parametrize(
    "bad_line",
    ['{"cell_id": "torn", "status": "o', '[1, 2, 3]', '"a string"', "42", "null"],
    ids=["torn", "list", "string", "number", "null"],
)
def test_damaged_line_is_skipped_with_a_warning(tmp_path, bad_line):
    path = tmp_path / "runs" / "m" / "run.jsonl"
    _write_jsonl(path, [json.dumps(_record("a")) + "\n", json.dumps(_record("b")) + "\n", bad_line])
    with pytest.warns(StoreWarning) as caught:
        df = load_results(tmp_path)
    assert df["cell_id"].tolist() == ["a", "b"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith(f"{path}:3: ")
    assert "damaged" in message


def test_damaged_line_in_the_middle(tmp_path):
    path = tmp_path / "run.jsonl"
    _write_jsonl(path, [json.dumps(_record("a")) + "\n", "{oops\n", "\n", json.dumps(_record("c")) + "\n"])
    with pytest.warns(StoreWarning, match=re.escape(f"{path}:2:")):
        assert load_results(path)["cell_id"].tolist() == ["a", "c"]
    with pytest.warns(StoreWarning, match=re.escape(f"{path}:2:")):
        assert finished_cells(path) == {"a", "c"}


# --------------------------------------------------------------------------- finished_cells


def test_finished_cells_by_status(tmp_path):
    with RunWriter(tmp_path, "x") as w:
        for status in ("ok", "unreachable", "oom", "error"):
            w.append(_record(f"c_{status}", status=status))
    assert finished_cells(tmp_path) == {"c_ok", "c_unreachable", "c_oom", "c_error"}
    assert finished_cells(tmp_path, retry_failed=True) == {"c_ok", "c_unreachable"}
    assert finished_cells(tmp_path / "missing") == set()


def test_lines_that_are_not_records_are_skipped_with_their_reason(tmp_path):
    with RunWriter(tmp_path, "x") as w:
        w.append(_record("c_ok"))
        w.append({"status": "ok"})  # no cell id: a foreign line
        w.append({"cell_id": "c_weird", "status": "pending"})  # not a status
        w.append(_record("c_text", gflops="12"))  # a hand edit: a number as text
        w.append(_record("c_list", top1=[0.5]))
        w.append({**_record("x"), "cell_id": ["x"]})
        w.append(_record("c_time", created_utc=20260101))
    with pytest.warns(StoreWarning) as caught:
        assert finished_cells(tmp_path) == {"c_ok"}
    reasons = [str(w.message).partition(": ")[2] for w in caught]
    assert [r.removeprefix("skipped a damaged record (torn write or hand edit): ") for r in reasons] == [
        "no cell_id (not a record written by 'tokbench run')",
        "status 'pending' is not one of ok, unreachable, oom, error",
        "gflops '12' is not a number", "top1 [0.5] is not a number",
        "no cell_id (not a record written by 'tokbench run')", "created_utc 20260101 is not text",
    ]


def test_finished_cells_later_success_counts(tmp_path):
    with RunWriter(tmp_path, "first") as w:
        w.append(_record("c1", status="error"))
    with RunWriter(tmp_path, "retry") as w:
        w.append(_record("c1", status="ok"))
    assert finished_cells(tmp_path, retry_failed=True) == {"c1"}
