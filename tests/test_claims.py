"""Cell claims: a cell another live sweep holds is skipped; a dead sweep's claim is taken
over (a reused pid or a reboot does not keep it alive); a claim is complete from the instant
it exists; what other sweeps stored meanwhile is returned, so it is not measured again."""

import json
import os
import subprocess
import sys
import time

from tokbench.benchmark.runner import Sweep, plan, run_sweep
from tokbench.claims import YOUNG_S, CellClaims, boot_id, clear_claims, process_start
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
    assert claims.acquire("a") == [] and (runs / ".claims" / "a.claim").exists()  # held; nothing stored yet
    owner = json.loads((runs / ".claims" / "a.claim").read_text())
    assert owner["pid"] == os.getpid() and owner["host"] == machine_name() and owner["run_id"] == "me"
    assert owner["start"] == process_start(os.getpid()) and owner["boot_id"] == boot_id()
    other = CellClaims(tmp_path, "other")
    assert other.acquire("a") is None and other.skipped_claimed == 1  # held by a live process (this one)
    claims.release("a")
    assert other.acquire("a") == []
    _claim(runs, "dead", host=machine_name(), pid=_dead_pid())
    assert claims.acquire("dead") == []  # a killed sweep's claim is taken over
    _claim(runs, "far", host="another-host", pid=1)
    assert claims.acquire("far") is None  # another host: honoured until the TTL
    os.utime(runs / ".claims" / "far.claim", (0, 0))
    assert claims.acquire("far") == []  # older than TOKBENCH_CLAIM_TTL_H
    claims.release_all()
    other.release_all()
    assert not (runs / ".claims").exists()


def test_a_reused_pid_or_a_reboot_does_not_keep_a_dead_claim(tmp_path):
    runs = tmp_path / "runs"
    me = {"host": machine_name(), "pid": os.getpid(), "start": process_start(os.getpid()), "boot_id": boot_id()}
    claims = CellClaims(tmp_path, "me")
    # The pid is alive (this process) but started at another time: the owner died, its pid was given again.
    _claim(runs, "reused", **{**me, "start": me["start"] - 1})
    assert claims.acquire("reused") == []
    _claim(runs, "rebooted", **{**me, "boot_id": "another-boot"})
    assert claims.acquire("rebooted") == []
    _claim(runs, "live", **me)
    assert claims.acquire("live") is None  # really this process: held
    _claim(runs, "old-style", host=machine_name(), pid=os.getpid())  # no start time recorded: the pid decides
    assert claims.acquire("old-style") is None


def test_a_half_written_claim_is_held_while_young_and_stale_once_old(tmp_path):
    runs = tmp_path / "runs"
    (runs / ".claims").mkdir(parents=True)
    torn = runs / ".claims" / "torn.claim"
    torn.write_text('{"host": ')  # another sweep is writing it now (a file system without links)
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire("torn") is None
    old = time.time() - YOUNG_S - 1
    os.utime(torn, (old, old))  # left half-written by a process killed while claiming
    assert claims.acquire("torn") == []


def test_a_claim_is_complete_the_instant_it_exists(tmp_path):
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire("k") == []
    folder = tmp_path / "runs" / ".claims"
    assert json.loads((folder / "k.claim").read_text())["run_id"] == "me"
    assert [p.name for p in folder.iterdir()] == ["k.claim"]  # the temporary name is gone


def test_two_sweeps_judging_one_stale_claim_do_not_both_take_it(tmp_path):
    runs = tmp_path / "runs"
    _claim(runs, "k", host=machine_name(), pid=_dead_pid())
    stale = (runs / ".claims" / "k.claim").read_bytes()
    first, second = CellClaims(tmp_path, "first"), CellClaims(tmp_path, "second")
    assert first.acquire("k") == []  # took the stale claim over, placed its own
    # The second had judged the same stale file before the first replaced it: moving it away
    # finds the first's new claim, which it puts back and does not take.
    assert not second._remove_stale(runs / ".claims" / "k.claim", stale)
    assert json.loads((runs / ".claims" / "k.claim").read_text())["run_id"] == "first"


def test_clear_claims_removes_every_claim(tmp_path):
    runs = tmp_path / "runs"
    _claim(runs, "far", host="another-host", pid=1)
    _claim(runs, "mine", host=machine_name(), pid=os.getpid())
    assert clear_claims(tmp_path) == 2 and not (runs / ".claims").exists()
    assert clear_claims(tmp_path) == 0


def test_acquire_returns_what_other_sweeps_stored_since(tmp_path):
    with RunWriter(tmp_path, "early") as writer:  # stored after we planned, before claims were made
        writer.append({"cell_id": "w", "status": "ok"})
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire("w") == [{"cell_id": "w", "status": "ok"}]
    with RunWriter(tmp_path, "other") as writer:  # another sweep stores cell "x" after we planned
        writer.append({"cell_id": "x", "status": "ok"})
    assert claims.acquire("x") == [{"cell_id": "x", "status": "ok"}]
    assert claims.acquire("y") == []
    # A re-read for one cell that already shows a later cell finished: known for that cell
    # too, though nothing has changed on disk since (the race the same-sweep-twice test hit).
    fresh = CellClaims(tmp_path, "again")
    with RunWriter(tmp_path, "other2") as writer:
        writer.append({"cell_id": "later", "status": "ok"})
    assert fresh.acquire("now") == []  # re-reads the store: "later" is finished
    assert fresh.acquire("later") == [{"cell_id": "later", "status": "ok"}]  # no change on disk since, still known


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
