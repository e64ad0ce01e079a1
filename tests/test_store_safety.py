"""Nothing stored is lost or duplicated: ``check --update`` never deletes a record it did not
first write to the new baseline, damaged or foreign records are skipped with one warning line,
equal method specs are one cell, folders that cannot take records fail before anything is
measured, a write failure mid-run stops with one line and keeps what was written, and a cell
that raises ``SystemExit`` is recorded like any failure."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import textwrap
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import tokbench.benchmark.runner as runner
import tokbench.report.check as check
import tokbench.store as store
from tokbench.cli import cli
from tokbench.store import load_records, machine_name

TINY = ["--backbone", "test_tiny", "--metrics", "flops", "--device", "cpu"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256): equal snapshots, equal folders."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_error_line(result, fragment: str) -> None:
    """Exit status 2 and, last on stderr, one error line holding ``fragment`` (``run`` prints
    what it plans first); no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("tokbench: error: ")]
    assert errors == lines[-1:] and fragment in errors[0], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    """A results folder with two cost cells of test_tiny (none, random at 0.5)."""
    results = tmp_path_factory.mktemp("measured")
    result = CliRunner().invoke(cli, ["run", *TINY, "--methods", "none,random", "--p-ratio", "0.5",
                                      "--results", str(results)])
    assert result.exit_code == 0, result.output
    return results


@pytest.fixture(scope="module")
def accuracy_results(tmp_path_factory) -> Path:
    """Two accuracy cells (none, random at 0.5) of synth-motion's zoo model on 8 clips."""
    results = tmp_path_factory.mktemp("accuracy")
    result = CliRunner().invoke(cli, ["run", "--dataset", "synth-motion", "--methods", "none,random", "--p-ratio", "0.5",
                                      "--limit", "8", "--repeats", "2", "--warmup", "0", "--results", str(results)])
    assert result.exit_code == 0, result.output
    return results


@pytest.fixture
def baseline(tmp_path, measured) -> Path:
    folder = tmp_path / "baseline"
    assert invoke("check", "--baseline", folder, "--results", measured / "runs", "--update").exit_code == 0
    return folder


# --------------------------------------------------------------------------- check --update


@pytest.mark.parametrize("lines", [
    ['{"name": "pytest", "outcome": "passed"}'],  # a foreign JSONL file
    ['{"cell_id": null, "status": "ok", "gflops": 1.0}'],  # records without an id
    ["garbage"],
], ids=["foreign", "null_cell_id", "garbage"])
def test_update_from_results_without_a_cell_leaves_the_baseline_as_it_was(tmp_path, baseline, lines):
    current = tmp_path / "current.jsonl"
    current.write_text("\n".join(lines) + "\n")
    before = snapshot(baseline)
    result = invoke("check", "--baseline", baseline, "--results", current, "--update")
    one_error_line(result, "no readable record")
    assert snapshot(baseline) == before


def test_update_never_deletes_the_results_it_reads_from(tmp_path, measured):
    folder = tmp_path / "x"
    (folder / "runs").mkdir(parents=True)
    for path in (measured / "runs").rglob("*.jsonl"):
        (folder / "runs" / path.name).write_bytes(path.read_bytes())
    runs_before = snapshot(folder / "runs")
    result = invoke("check", "--baseline", folder, "--results", folder / "runs", "--update")
    assert result.exit_code == 0, result.output
    assert snapshot(folder / "runs") == runs_before  # the run files are all still there
    written = [json.loads(line) for line in (folder / "baseline.jsonl").read_text().splitlines()]
    assert sorted(r["cell_id"] for r in written) == sorted(r["cell_id"] for r in load_records(folder / "runs"))
    # ... so the next run resumes from them and measures nothing again.
    again = invoke("run", *TINY, "--methods", "none,random", "--p-ratio", "0.5", "--results", folder)
    assert again.exit_code == 0 and "skipped 2 cells" in again.stderr


def test_update_carries_cells_the_results_lack_and_leaves_foreign_files(tmp_path, baseline, measured):
    extra = {**load_records(baseline)[0], "cell_id": "f" * 16, "p_ratio": 0.25}
    (baseline / "extra.jsonl").write_text(json.dumps(extra) + "\n")
    (baseline / "notes.jsonl").write_text('{"comment": "not a record"}\n')
    result = invoke("check", "--baseline", baseline, "--results", measured / "runs", "--update")
    assert result.exit_code == 0 and "wrote 2 baseline cells" in result.output
    assert "and 1 cells of the old baseline that the results do not have" in result.output
    assert sorted(p.name for p in baseline.iterdir()) == ["baseline.jsonl", "notes.jsonl"]
    cells = [json.loads(line)["cell_id"] for line in (baseline / "baseline.jsonl").read_text().splitlines()]
    assert len(cells) == 3 and "f" * 16 in cells


def test_update_on_a_folder_that_refuses_writes_keeps_the_old_baseline(tmp_path, baseline, measured, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(check.tempfile, "NamedTemporaryFile", read_only)
    before = snapshot(baseline)
    result = invoke("check", "--baseline", baseline, "--results", measured / "runs", "--update")
    one_error_line(result, "cannot write the baseline: Read-only file system")
    assert snapshot(baseline) == before


def test_check_against_a_baseline_of_foreign_records_fails(tmp_path, measured):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "b.jsonl").write_text('{"name": "pytest", "outcome": "passed"}\n')
    one_error_line(invoke("check", "--baseline", foreign, "--results", measured / "runs"), "no readable record")


# --------------------------------------------------------------------------- damaged records


@pytest.mark.parametrize("damage", [{"gflops": "12"}, {"top1": "high"}, {"created_utc": 20260101}, {"cell_id": ["x"]},
                                    {"p_ratio": None, "status": "fine"}, {"env": "cpu"}],
                         ids=["text_gflops", "text_top1", "int_time", "list_id", "bad_status", "text_env"])
@pytest.mark.parametrize("command", ["plot", "report", "check"])
def test_a_damaged_record_is_one_warning_and_the_others_are_used(tmp_path, accuracy_results, damage, command):
    measured = accuracy_results
    records = load_records(measured)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    lines = [json.dumps(records[0]), json.dumps({**records[1], **damage}), json.dumps(records[1])]
    (mixed / "r.jsonl").write_text("\n".join(lines) + "\n")
    args = {"plot": ["plot", "--results", mixed, "--out", tmp_path / "plot.png"],
            "report": ["report", "--results", mixed, "--out", tmp_path / "report", "--no-viz"],
            "check": ["check", "--baseline", measured, "--results", mixed, "--no-speed"]}[command]
    with warnings.catch_warnings():
        warnings.simplefilter("always", store.StoreWarning)  # shown as the CLI shows it, not raised
        result = invoke(*args)
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stderr.splitlines() if line.startswith("tokbench: warning:")]
    assert len(shown) == 1 and f"{mixed / 'r.jsonl'}:2: skipped a damaged record" in shown[0]
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- planning


def test_equal_method_specs_are_one_cell_said_once(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("always", runner.DuplicateCellWarning)
        result = invoke("run", *TINY, "--methods", "random,random,random(seed=0),random(seed=1)", "--p-ratio", "0.5",
                        "--results", tmp_path)
    assert result.exit_code == 0, result.output
    shown = [line for line in result.stderr.splitlines() if line.startswith("tokbench: warning:")]
    assert shown == [
        "tokbench: warning: --methods: 'random' is the same method as 'random'; its cells are measured once",
        "tokbench: warning: --methods: 'random(seed=0)' is the same method as 'random'; its cells are measured once",
    ]
    records = load_records(tmp_path)
    assert sorted(r["method_id"] for r in records) == ["random", "random(seed=1)"]


# --------------------------------------------------------------------------- folders that refuse


def _run(results, *extra):
    return invoke("run", *TINY, "--methods", "none,random", "--p-ratio", "0.5", "--results", results, *extra)


@pytest.mark.parametrize("blocker", ["runs", "machine"])
def test_a_file_where_the_runs_folder_goes(tmp_path, blocker):
    results = tmp_path / "results"
    target = results / "runs" if blocker == "runs" else results / "runs" / machine_name()
    target.parent.mkdir(parents=True)
    target.write_text("in the way")
    before = snapshot(results)
    one_error_line(_run(results), f"{target} is a file, not a folder")
    assert snapshot(results) == before


def test_a_symlink_loop_and_a_name_too_long(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    one_error_line(_run(loop), "--results")
    one_error_line(_run(tmp_path / ("x" * 300)), "--results")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop"]


def test_a_long_run_name_is_cut_in_the_file_name(tmp_path):
    result = _run(tmp_path / "r", "--name", "n" * 300)
    assert result.exit_code == 0, result.output
    (path,) = (tmp_path / "r" / "runs").rglob("*.jsonl")
    assert len(path.name) < 120 and "n" * 64 in path.name and "n" * 65 not in path.name


def test_a_folder_that_refuses_writes_fails_before_measuring(tmp_path, monkeypatch):
    def full_disk(path, *args, **kwargs):
        if Path(path).name.startswith(".probe"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return open(path, *args, **kwargs)

    measured = []
    monkeypatch.setattr(runner._Run, "unit", lambda self, cells: measured.append(len(cells)))
    monkeypatch.setattr(store, "open", full_disk, raising=False)
    one_error_line(_run(tmp_path / "r"), "cannot write records in")
    assert measured == [] and not list((tmp_path / "r").rglob("*.jsonl"))


class _FillsUp:
    """A results file on a disk that fills up in the middle of its second line."""

    def __init__(self, file):
        self.file, self.lines = file, 0

    def write(self, text):
        self.lines += 1
        if self.lines == 2:
            self.file.write(text[:12])
            self.file.flush()
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.file.write(text)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_a_write_failure_mid_run_stops_with_one_line_and_keeps_what_was_written(tmp_path, monkeypatch):
    def filling(path, *args, **kwargs):
        file = open(path, *args, **kwargs)  # noqa: SIM115 - handed to the writer, which closes it
        return _FillsUp(file) if str(path).endswith(".jsonl") and args[:1] == ("x",) else file  # the writer's only

    monkeypatch.setattr(store, "open", filling, raising=False)
    results = tmp_path / "r"
    result = _run(results)
    one_error_line(result, "could not write a record")
    assert "No space left on device; the records written before it are kept" in result.stderr
    with pytest.warns(store.StoreWarning, match="skipped a damaged record"):  # the torn second line
        kept = load_records(results)
    assert [r["method"] for r in kept] == ["none"]
    assert not (results / "runs" / ".claims").exists()
    monkeypatch.undo()
    with warnings.catch_warnings():
        warnings.simplefilter("always", store.StoreWarning)
        again = _run(results)  # resumes: the lost cell is measured, the kept one is not
    assert again.exit_code == 0 and "skipped 1 cells" in again.stderr


# --------------------------------------------------------------------------- cells that exit

EXITING = textwrap.dedent('''
    from tokbench.methods import Method, register_method


    @register_method("exiting")
    class Exiting(Method):
        """Calls sys.exit in its setup, as a careless plug-in might."""

        def setup(self, backbone):
            raise SystemExit(3)
''')


def test_a_cell_raising_system_exit_is_recorded_and_the_sweep_goes_on(tmp_path):
    plugin = tmp_path / "exiting.py"
    plugin.write_text(EXITING)
    result = invoke("--plugin", plugin, "run", *TINY, "--methods", "exiting,random", "--p-ratio", "0.5",
                    "--results", tmp_path / "r")
    assert result.exit_code == 0, result.output
    by_method = {r["method"]: r for r in load_records(tmp_path / "r")}
    assert by_method["exiting"]["status"] == "error" and by_method["exiting"]["error"] == "SystemExit: 3"
    assert by_method["random"]["status"] == "ok"


def test_claims_of_another_host_can_be_cleared(tmp_path):
    claims = tmp_path / "r" / "runs" / ".claims"
    claims.mkdir(parents=True)
    keys = [c.key for c in runner.plan(runner.Sweep(backbones=("test_tiny",), methods=("none", "random"),
                                                    p_ratios=(0.5,), metrics=("flops",), device="cpu"))]
    for key in keys:
        (claims / f"{key}.claim").write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    blocked = _run(tmp_path / "r")
    assert blocked.exit_code == 0 and "skipped 2 cells another running sweep" in blocked.stderr
    cleared = _run(tmp_path / "r", "--clear-claims")
    assert cleared.exit_code == 0 and "removed 2 cell claim(s)" in cleared.stderr
    assert len(load_records(tmp_path / "r")) == 2 and not claims.exists()
    assert os.listdir(tmp_path / "r" / "runs") == [machine_name()]
