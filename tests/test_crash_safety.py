"""Crash safety of the results store, with real ``tokbench`` processes: a sweep killed with
SIGKILL loses at most the cell in flight and resumes to a complete set; a torn last line is
reported (never silently dropped) and every reader still works; two sweeps writing to one
results folder at once lose and duplicate nothing; a cell that raises is recorded and
``--retry-failed`` re-runs only those.

The sweeps are cost-only on ``test_tiny`` (FLOPs traced in ~0.1 s per cell). Children run
with one OpenMP/MKL thread: with torch's default of one thread per core, timed forward
passes on a busy 2-core machine took up to 100x longer, and here two processes run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest

from tokbench.report.check import latest_by_cell
from tokbench.store import StoreWarning, finished_cells, load_records

# A cell takes ~0.1-0.2 s (mostly the FLOPs trace); a `tokbench run` process spends 3-8 s
# importing (torch, timm, torchvision) before its first cell.
SWEEP = ["--backbone", "test_tiny", "--metrics", "flops,throughput", "--device", "cpu",
         "--repeats", "20", "--warmup", "3"]
KILL_SWEEP = [*SWEEP, "--methods", "none,random", "--p-ratio", "0.1:0.9"]  # 1 + 9 cells: ~1.5 s of work
TIMEOUT = 180  # per child process; they take ~5-10 s, more on a busy machine


# --------------------------------------------------------------------------- helpers


def _env(**extra: str) -> dict[str, str]:
    """The test's environment (conftest's TOKBENCH_CACHE included) with one compute thread."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


def _cmd(*args) -> list[str]:
    return [sys.executable, "-m", "tokbench", *map(str, args)]


def tokbench(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), capture_output=True, text=True, env=env or _env(), timeout=TIMEOUT)


def start(log: Path, *args, env: dict[str, str] | None = None) -> subprocess.Popen:
    """A background ``tokbench`` whose stdout and stderr go to ``log`` (a pipe could fill)."""
    with open(log, "wb") as out:
        return subprocess.Popen(_cmd(*args), stdout=out, stderr=subprocess.STDOUT, env=env or _env())


@contextlib.contextmanager
def running(tmp_path: Path, *commands: list):
    """Run ``tokbench`` commands at the same time while the body runs (e.g. plans the cells
    in this process); on exit wait for them and assert each exited 0. Yields a list that
    then holds their output (stdout and stderr together)."""
    outputs: list[str] = []
    logs = [tmp_path / f"proc{i}.log" for i in range(len(commands))]
    procs = []
    try:
        for log, args in zip(logs, commands):
            procs.append(start(log, *args))
        yield outputs
        for proc in procs:
            proc.wait(timeout=TIMEOUT)
    finally:
        for proc in procs:  # never leave a child behind, whatever failed
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    outputs += [log.read_text(errors="replace") for log in logs]
    for proc, out in zip(procs, outputs):
        assert proc.returncode == 0, out


def run_files(results: Path) -> list[Path]:
    return sorted((results / "runs").rglob("*.jsonl"))


def parse_strictly(path: Path) -> tuple[list[dict], bytes]:
    """Every newline-terminated line of ``path`` as a JSON object (asserted), and the bytes
    after the last newline (a torn write; ``b""`` when the file ends cleanly)."""
    data = path.read_bytes()
    *lines, tail = data.split(b"\n")
    records = []
    for lineno, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{path}:{lineno}: a complete line that does not parse: {line[:200]!r}")
        assert isinstance(record, dict), f"{path}:{lineno}: {line[:200]!r}"
        records.append(record)
    return records, tail


def planned_keys(methods: str, p_ratio: str, **sweep) -> list[str]:
    """The cell ids ``tokbench run`` with SWEEP plans for these methods and P-Ratios."""
    from tokbench.benchmark.runner import Sweep, plan
    from tokbench.benchmark.spec import parse_p_ratios
    from tokbench.methods import split_specs

    options = {"metrics": ("flops", "throughput"), "device": "cpu", "repeats": 20, "warmup": 3, **sweep}
    cells = plan(Sweep(backbones=("test_tiny",), methods=tuple(split_specs(methods)),
                       p_ratios=tuple(parse_p_ratios(p_ratio)), **options))
    keys = [c.key for c in cells]
    assert len(set(keys)) == len(keys)
    return keys


def cell_counts(records: list[dict], status: str = "ok") -> Counter:
    return Counter(r["cell_id"] for r in records if r.get("status") == status)


# --------------------------------------------------------------------------- 1. SIGKILL


def test_sigkill_loses_at_most_the_cell_in_flight_and_resume_completes(tmp_path):
    """SIGKILL once 2 records are on disk; every record already flushed survives, only the
    last line may be torn, and the same command then measures exactly the rest, so every
    planned cell is stored exactly once."""
    results = tmp_path / "results"
    log = tmp_path / "killed.log"
    proc = start(log, "run", *KILL_SWEEP, "--results", results)
    seen, deadline = 0, time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            files = run_files(results)
            seen = files[0].read_bytes().count(b"\n") if files else 0
            if seen >= 2:
                break
            assert proc.poll() is None, f"the sweep ended before it could be killed:\n{log.read_text()}"
            time.sleep(0.01)
        else:
            pytest.fail(f"no 2 records within {TIMEOUT} s:\n{log.read_text()}")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, "the sweep finished before the kill landed: make it longer"
    (killed_file,) = run_files(results)
    killed_bytes = killed_file.read_bytes()

    # The same command again; meanwhile, plan the sweep here to know its cells.
    with running(tmp_path, ["run", *KILL_SWEEP, "--results", results]) as output:
        planned = planned_keys("none,random", "0.1:0.9")
    assert len(planned) == 10

    assert killed_file.read_bytes() == killed_bytes  # a results file is never rewritten
    killed, tail = parse_strictly(killed_file)  # every complete line parses; only a last fragment may be torn
    assert len(killed) >= seen, "a record that was already on disk was lost"
    assert len(killed) < len(planned), "the kill landed after the last cell: nothing was cut short"
    assert all(r["status"] == "ok" for r in killed), killed
    assert len({r["run_id"] for r in killed}) == 1
    assert [r["cell_id"] for r in killed] == planned[: len(killed)]  # measured and written in plan order

    # The second run measured exactly the cells the killed sweep had not written.
    assert f"tokbench run: {len(planned)} cells" in output[0]
    assert f"skipped {len(killed)} cells already in" in output[0]
    (resumed_file,) = [f for f in run_files(results) if f != killed_file]
    resumed, resumed_tail = parse_strictly(resumed_file)
    assert resumed_tail == b""
    assert [r["cell_id"] for r in resumed] == planned[len(killed):]

    # Across all files: every planned cell exactly once among the ok records.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_records(results)
    # A write cut short by the kill is reported, naming the file and line; nothing else is.
    torn = [f"{killed_file}:{len(killed) + 1}: skipped a damaged record (torn write or hand edit)"] if tail else []
    assert [(w.category, str(w.message)) for w in caught] == [(StoreWarning, m) for m in torn]
    assert cell_counts(records) == Counter(planned)
    assert len(records) == len(planned)

    # And a third run has nothing left to do.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        assert set(planned) <= finished_cells(results / "runs")


# --------------------------------------------------------------------------- 2. torn last line


@pytest.fixture
def torn_results(tmp_path):
    """A results folder whose one file holds 3 records and the first half of a 4th (a write
    cut short), and a baseline folder with all 4 complete. Returns (results, file, baseline,
    the torn record)."""
    from tokbench.benchmark.runner import Sweep, run_sweep

    sweep = Sweep(backbones=("test_tiny",), methods=("none", "random"), p_ratios=(0.5, 0.75, 1.0),
                  metrics=("flops", "throughput"), device="cpu", repeats=2, warmup=0)
    made = run_sweep(sweep, results_dir=tmp_path / "made")
    assert [r["status"] for r in made.records] == ["ok"] * 4
    lines = made.path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(lines) == 4
    results, baseline = tmp_path / "results", tmp_path / "baseline"
    torn = results / "runs" / made.path.parent.name / made.path.name
    torn.parent.mkdir(parents=True)
    torn.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2], encoding="utf-8")
    baseline.mkdir()
    shutil.copy(made.path, baseline / "baseline.jsonl")
    return results, torn, baseline, json.loads(lines[3])


def test_torn_last_line_is_reported_and_skipped(torn_results):
    results, torn, _, lost = torn_results
    complete, tail = parse_strictly(torn)
    assert len(complete) == 3 and tail and not tail.endswith(b"}")
    for where in (torn, results, results / "runs"):
        with pytest.warns(StoreWarning) as caught:
            records = load_records(where)
        assert records == complete
        assert [str(w.message) for w in caught] == [
            f"{torn}:4: skipped a damaged record (torn write or hand edit)"]
    with pytest.warns(StoreWarning, match=re.escape(f"{torn}:4:")):
        done = finished_cells(results / "runs")
    assert lost["cell_id"] not in done
    assert done == {r["cell_id"] for r in complete}


def test_plot_and_check_read_a_torn_file_and_print_the_warning(torn_results, tmp_path):
    results, torn, baseline, lost = torn_results
    warning = f"tokbench: warning: {torn}:4: skipped a damaged record"

    out = tmp_path / "plots"
    plot = tokbench("plot", "--results", results, "--out", out)
    assert plot.returncode == 0, plot.stderr
    assert warning in plot.stderr
    assert (out / "throughput_vs_gflops_test_tiny.png").stat().st_size > 1000

    # Against a baseline holding the 4th record too, the torn record shows as a missing cell.
    check = tokbench("check", "--baseline", baseline, "--results", results, "--no-speed")
    assert check.returncode == 1, check.stdout + check.stderr
    assert warning in check.stderr
    assert check.stdout.startswith("**1 regression(s)** in 3 compared cells (1 baseline cells missing")
    assert f"test_tiny / {lost['method_id']} / P={lost['p_ratio']} | cell |" in check.stdout
    assert "no current record of this baseline cell" in check.stdout


def test_resume_over_a_torn_line_remeasures_only_that_cell(torn_results):
    results, torn, _, lost = torn_results
    # Another sweep, killed while writing its first record: a file holding only a fragment.
    first = torn.with_name("20000101T000000Z_sweep_1-abcdef.jsonl")
    first.write_text(json.dumps(lost, sort_keys=True)[:100], encoding="utf-8")
    before = {f: f.read_bytes() for f in (torn, first)}
    r = tokbench("run", "--backbone", "test_tiny", "--metrics", "flops,throughput", "--device", "cpu",
                 "--repeats", "2", "--warmup", "0", "--methods", "none,random", "--p-ratio", "0.5,0.75,1",
                 "--results", results)
    assert r.returncode == 0, r.stderr
    for damaged in (f"{torn}:4:", f"{first}:1:"):
        assert f"tokbench: warning: {damaged} skipped a damaged record" in r.stderr
    assert "skipped 3 cells already in" in r.stderr
    assert {f: f.read_bytes() for f in before} == before  # damaged files are left as they are
    (new,) = [f for f in run_files(results) if f not in before]
    records, tail = parse_strictly(new)
    assert tail == b""
    assert [(r["cell_id"], r["status"]) for r in records] == [(lost["cell_id"], "ok")]


# --------------------------------------------------------------------------- 3. two writers at once


def test_two_sweeps_with_disjoint_methods_into_one_folder(tmp_path):
    results = tmp_path / "results"
    jobs = {"a": ("none,random", "0.2:0.8:0.2"), "b": ("motion", "0.2:0.8:0.2")}  # 5 and 4 cells
    with running(tmp_path, *(["run", *SWEEP, "--methods", m, "--p-ratio", p, "--name", k, "--results", results]
                             for k, (m, p) in jobs.items())):
        planned = {k: planned_keys(m, p) for k, (m, p) in jobs.items()}
    assert not set(planned["a"]) & set(planned["b"])

    files = run_files(results)
    assert len(files) == 2
    by_name = {}
    for f in files:
        records, tail = parse_strictly(f)
        assert tail == b"", f
        assert len({r["run_id"] for r in records}) == 1
        by_name[re.search(r"_([ab])_\d+-[0-9a-f]{6}\.jsonl$", f.name)[1]] = records
    for k in jobs:  # each sweep's file holds its cells, each once, in order, all ok
        assert [(r["cell_id"], r["status"]) for r in by_name[k]] == [(c, "ok") for c in planned[k]]
    assert by_name["a"][0]["run_id"] != by_name["b"][0]["run_id"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        records = load_records(results)
    assert cell_counts(records) == Counter(planned["a"] + planned["b"])
    assert len(records) == len(planned["a"]) + len(planned["b"])


def test_the_same_sweep_twice_at_once(tmp_path):
    """Both processes plan every cell, but each claims a cell before measuring it
    (tokbench/claims.py) and skips cells the other holds or has finished: every planned
    cell is stored exactly once, every line of every file parses, and no claim is left."""
    results = tmp_path / "results"
    methods, p_ratio = "none,random", "0.1:0.9"
    command = ["run", *SWEEP, "--methods", methods, "--p-ratio", p_ratio, "--results", results]
    with running(tmp_path, command, command):
        planned = planned_keys(methods, p_ratio)

    files = run_files(results)
    assert 1 <= len(files) <= 2
    everything = []
    for f in files:
        records, tail = parse_strictly(f)
        assert tail == b"", f
        cells = [r["cell_id"] for r in records]
        assert cells == [c for c in planned if c in cells]  # in plan order
        assert all(r["status"] == "ok" for r in records)
        everything += records
    assert cell_counts(everything) == Counter(planned)  # each cell exactly once, across both files
    assert not (results / "runs" / ".claims").exists()  # claims go with their records

    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        done = finished_cells(results / "runs")
    assert done == set(planned)  # a third run would measure nothing


# --------------------------------------------------------------------------- 4. errors and retry

PLUGIN = textwrap.dedent('''
    """A method whose setup raises while TOKBENCH_TEST_CRASHY=fail (a cell that fails)."""
    import os

    from tokbench.methods import Method, register_method


    @register_method("crashy")
    class Crashy(Method):
        """Keeps every token; its setup fails while TOKBENCH_TEST_CRASHY=fail."""

        def setup(self, backbone):
            if os.environ.get("TOKBENCH_TEST_CRASHY") == "fail":
                raise RuntimeError(f"crashy cannot set up at P={self.p_ratio:g}")
''')


@pytest.mark.slow
def test_a_failing_cell_is_recorded_and_retry_failed_reruns_only_it(tmp_path):
    plugin = tmp_path / "crashy_plugin.py"
    plugin.write_text(PLUGIN)
    results = tmp_path / "results"
    args = ["--plugin", plugin, "run", "--backbone", "test_tiny", "--metrics", "flops", "--methods", "crashy,random",
            "--p-ratio", "0.25,0.5", "--results", results]

    first = tokbench(*args, env=_env(TOKBENCH_TEST_CRASHY="fail"))
    assert first.returncode == 0, first.stderr  # failed cells are results, not a failed command
    (first_file,) = run_files(results)
    records, tail = parse_strictly(first_file)
    assert tail == b""
    assert [(r["method"], r["p_ratio"], r["status"], r["error"]) for r in records] == [
        ("crashy", 0.25, "error", "RuntimeError: crashy cannot set up at P=0.25"),
        ("crashy", 0.5, "error", "RuntimeError: crashy cannot set up at P=0.5"),
        ("random", 0.25, "ok", None),  # the sweep went on after the failures
        ("random", 0.5, "ok", None),
    ]
    assert all("gflops" not in r for r in records[:2])
    assert re.search(r"crashy\s+0.25\s+error\b.*RuntimeError: crashy cannot set up at P=0.25", first.stdout)
    failed = [r["cell_id"] for r in records[:2]]
    first_bytes = first_file.read_bytes()

    retry = tokbench(*args, "--retry-failed")  # the cause is gone
    assert retry.returncode == 0, retry.stderr
    assert "skipped 2 cells already in" in retry.stderr
    assert first_file.read_bytes() == first_bytes
    (retry_file,) = [f for f in run_files(results) if f != first_file]
    retried, tail = parse_strictly(retry_file)
    assert tail == b""
    assert [(r["cell_id"], r["status"], r["error"]) for r in retried] == [(c, "ok", None) for c in failed]

    latest = latest_by_cell(load_records(results))
    assert len(latest) == 4
    assert {r["status"] for r in latest.values()} == {"ok"}


@pytest.mark.slow
def test_identical_sweeps_started_together_store_each_cell_once_in_20_trials(tmp_path):
    """The race of issue 15: 2 or 3 identical sweeps started at the same instant. A claim is
    complete from the instant it exists (written under a temporary name, then linked), so no
    sweep ever judges another's claim half-written and stale; 20 trials, no duplicate."""
    methods, p_ratio = "none,random", "0.25,0.5,0.75"
    planned = planned_keys(methods, p_ratio)
    for trial in range(20):
        results = tmp_path / f"t{trial}"
        command = ["run", *SWEEP, "--methods", methods, "--p-ratio", p_ratio, "--results", results]
        logs = tmp_path / f"logs{trial}"
        logs.mkdir()
        with running(logs, *[command] * (2 + trial % 2)):  # 2 processes, then 3, ...
            pass
        records = [r for f in run_files(results) for r in parse_strictly(f)[0]]
        assert cell_counts(records) == Counter(planned), f"trial {trial}"
        assert len(records) == len(planned), f"trial {trial}: {len(records)} records for {len(planned)} cells"
        assert not (results / "runs" / ".claims").exists()
