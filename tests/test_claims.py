"""Cell claims: a cell another live sweep holds is skipped; a dead sweep's claim is taken
over; a cell finished meanwhile by another sweep is not measured again."""

import json
import os
import subprocess
import sys

from tokbench.benchmark.runner import Sweep, plan, run_sweep
from tokbench.claims import CellClaims
from tokbench.store import RunWriter, machine_name


def _claim(folder, key, **owner):
    (folder / ".claims").mkdir(parents=True, exist_ok=True)
    (folder / ".claims" / f"{key}.claim").write_text(json.dumps(owner))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_acquire_release_and_live_or_stale_claims(tmp_path):
    runs = tmp_path / "runs"
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire("a") and (runs / ".claims" / "a.claim").exists()
    owner = json.loads((runs / ".claims" / "a.claim").read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == machine_name() and owner["run_id"] == "me"
    other = CellClaims(tmp_path, "other")
    assert not other.acquire("a") and other.skipped_claimed == 1  # held by a live process (this one)
    claims.release("a")
    assert other.acquire("a")
    _claim(runs, "dead", host=machine_name(), pid=_dead_pid())
    assert claims.acquire("dead")  # a killed sweep's claim is taken over
    _claim(runs, "far", host="another-host", pid=1)
    assert not claims.acquire("far")  # another host: honoured until the TTL
    os.utime(runs / ".claims" / "far.claim", (0, 0))
    assert claims.acquire("far")  # older than TOKBENCH_CLAIM_TTL_H
    (runs / ".claims" / "torn.claim").write_text('{"host": ')
    assert claims.acquire("torn")  # half-written by a process killed while claiming
    claims.release_all()
    other.release_all()
    assert not (runs / ".claims").exists()


def test_a_cell_finished_by_another_sweep_meanwhile_is_not_measured(tmp_path):
    with RunWriter(tmp_path, "early") as writer:  # stored after we planned, before claims were made
        writer.append({"cell_id": "w", "status": "ok"})
    claims = CellClaims(tmp_path, "me")
    assert not claims.acquire("w")
    with RunWriter(tmp_path, "other") as writer:  # another sweep stores cell "x" after we planned
        writer.append({"cell_id": "x", "status": "ok"})
    assert not claims.acquire("x")
    assert not (tmp_path / "runs" / ".claims" / "x.claim").exists()  # given up again
    assert claims.acquire("y")
    # A re-read for one cell that already shows a later cell finished: that cell is skipped
    # too, though nothing has changed on disk since (the race the same-sweep-twice test hit).
    fresh = CellClaims(tmp_path, "again")
    with RunWriter(tmp_path, "other2") as writer:
        writer.append({"cell_id": "later", "status": "ok"})
    assert fresh.acquire("now")  # re-reads the store: "later" is finished
    assert not fresh.acquire("later")  # no change on disk since, still known finished


def test_run_sweep_skips_cells_a_live_sweep_claims(tmp_path):
    sweep = Sweep(backbones=("test_tiny",), methods=("random",), p_ratios=(0.25, 0.5), metrics=("flops",),
                  device="cpu")
    held, free = plan(sweep)
    _claim(tmp_path / "runs", held.key, host=machine_name(), pid=os.getpid(), run_id="busy")
    result = run_sweep(sweep, results_dir=tmp_path)
    assert [r["cell_id"] for r in result.records] == [free.key] and result.claimed == 1
    (tmp_path / "runs" / ".claims" / f"{held.key}.claim").unlink()  # the other sweep ends without it
    again = run_sweep(sweep, results_dir=tmp_path)
    assert [r["cell_id"] for r in again.records] == [held.key] and again.skipped == 1
