"""A cell's identity holds what decides its cost and accuracy, never the machine: the same
cell measured on two CPU models is one cell for ``check`` and for resume; only its speed is
tied to the device (``speed_id``)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

import tokbench.benchmark.runner as runner
from tokbench.benchmark.runner import Sweep, plan, run_sweep
from tokbench.cli import cli
from tokbench.store import load_records, pending_metrics


def _sweep(**kw) -> Sweep:
    base = dict(backbones=("synth_tiny",), methods=("none", "random"), p_ratios=(0.5,),
                metrics=("accuracy", "flops", "throughput"), device="cpu", datasets=("synth-motion",),
                checkpoint="zoo", limit=8, eval_batch_size=8, warmup=0, repeats=2)
    return Sweep(**{**base, **kw})


def _on_device(monkeypatch, name: str) -> None:
    """Measure as if on a machine whose CPU model is ``name``."""
    monkeypatch.setattr(runner, "device_name", lambda device: name)
    monkeypatch.setattr(runner, "collect_environment", lambda device: {"device_name": name, "cpu": name})


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The two cells measured once on 'CPU A'."""
    results = tmp_path_factory.mktemp("a")
    with pytest.MonkeyPatch.context() as mp:
        _on_device(mp, "CPU A")
        run_sweep(_sweep(), results_dir=results)
    return results


def _check(baseline, current, *extra):
    return CliRunner().invoke(cli, ["check", "--baseline", str(baseline), "--results", str(current), *extra])


def _rewrite(src, dst, **fields):
    dst.mkdir(parents=True, exist_ok=True)
    records = [{**r, **fields} for r in load_records(src)]
    (dst / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return records


def test_the_cell_id_does_not_depend_on_the_device_but_the_speed_id_does(monkeypatch):
    _on_device(monkeypatch, "CPU A")
    a = plan(_sweep())
    _on_device(monkeypatch, "CPU B")
    b = plan(_sweep())
    assert [c.key for c in a] == [c.key for c in b]
    assert all(x.speed_key != y.speed_key for x, y in zip(a, b))
    assert [c.key for c in plan(_sweep(metrics=("accuracy", "flops")))] == [c.key for c in a]


def test_check_compares_cost_and_accuracy_across_devices_and_skips_their_speed(measured, tmp_path):
    # The same records, as another CPU model would have measured them (speed ids differ).
    other = _rewrite(measured, tmp_path / "b", speed_device="CPU B", speed_id="0" * 16,
                     env={"device_name": "CPU B"})
    ok = _check(measured, tmp_path / "b", "--no-speed")
    assert ok.exit_code == 0, ok.output
    assert "**0 regression(s)** in 2 compared cells (0 baseline cells missing, 0 new cells" in ok.output
    with_speed = _check(measured, tmp_path / "b")
    assert with_speed.exit_code == 0, with_speed.output
    assert "throughput compared in 0 cells, not compared in 2 (another device or a busy machine)" in with_speed.output
    assert "| 2 cell(s) | clips_per_s | CPU A | CPU B | changed: speed not compared" in with_speed.output
    # `none` is one cell at P = 1 and `random` one at 0.5; only these two are in the results.
    assert sorted(r["method"] for r in other) == ["none", "random"]
    # A real accuracy or FLOP change is still a regression across devices.
    worse = [dict(r, top1=r["top1"] - 0.25) if r["method"] == "random" else dict(r, gflops=r["gflops"] * 1.01)
             for r in other]
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in worse))
    bad = _check(measured, tmp_path / "c", "--no-speed")
    assert bad.exit_code == 1
    assert "**2 regression(s)** in 2 compared cells" in bad.output
    assert "dropped 25.00 points" in bad.output and "cost must not change" in bad.output


def test_check_compares_speed_on_the_same_device(measured, tmp_path):
    # As if timed on a quiet machine, with tight intervals (a busy or noisy timing: see test_check).
    quiet, slow = tmp_path / "quiet", tmp_path / "slow"
    for folder, scale in ((quiet, 1), (slow, 10)):
        records = _rewrite(measured, folder, speed_flags=[])
        for r in records:
            r["clips_per_s"] = r["clips_per_s_lo"] = r["clips_per_s_hi"] = r["clips_per_s"] / scale
        (folder / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = _check(quiet, tmp_path / "slow")
    assert result.exit_code == 1 and result.output.count("0.10x the baseline") == 2
    assert "throughput compared in 2 cells, not compared in 0" in result.output


def test_resume_on_another_device_times_only_the_speed_and_carries_the_rest(measured, tmp_path, monkeypatch):
    results = tmp_path / "r"
    shutil.copytree(measured, results)
    before = {r["cell_id"]: r for r in load_records(results)}
    _on_device(monkeypatch, "CPU A")
    assert run_sweep(_sweep(), results_dir=results).skipped == 2  # same device: all done
    assert run_sweep(_sweep(metrics=("accuracy", "flops")), results_dir=results).skipped == 2

    _on_device(monkeypatch, "CPU B")
    evaluated = []
    real_evaluate = runner.evaluate
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: evaluated.append(1) or real_evaluate(*a, **k))
    result = run_sweep(_sweep(), results_dir=results)
    assert result.skipped == 0 and len(result.records) == 2
    assert evaluated == []  # accuracy is not measured again
    by_cell = {r["cell_id"]: r for r in result.records}
    assert by_cell.keys() == before.keys()
    for key, new in by_cell.items():
        old = before[key]
        assert new["top1"] == old["top1"] and new["gflops"] == old["gflops"]
        assert new["metrics"] == ["accuracy", "flops", "throughput"]
        assert new["speed_device"] == "CPU B" and new["speed_id"] != old["speed_id"]
        assert new["reused"] == {"run_id": old["run_id"], "created_utc": old["created_utc"],
                                 "metrics": ["accuracy", "flops"], "device_name": "CPU A"}
    assert run_sweep(_sweep(), results_dir=results).skipped == 2  # now done on B too


def test_pending_metrics_rules():
    ok = {"status": "ok", "metrics": ["accuracy", "flops", "throughput"], "speed_id": "s1"}
    assert pending_metrics([ok], ["accuracy", "flops", "throughput"], "s1") == ((), None)
    assert pending_metrics([ok], ["accuracy", "throughput"], "s2") == (("throughput",), ok)
    assert pending_metrics([], ["flops"], None) == (("flops",), None)
    flops_only = {"status": "ok", "metrics": ["flops"]}
    assert pending_metrics([flops_only], ["accuracy", "flops"], None) == (("accuracy",), flops_only)
    # A privileged method's throughput is skipped on every device.
    oracle = {"status": "ok", "metrics": ["accuracy", "throughput"], "throughput_skipped": "privileged", "speed_id": "s1"}
    assert pending_metrics([oracle], ["accuracy", "throughput"], "s2") == ((), None)
    # Unreachable anywhere is unreachable here.
    assert pending_metrics([{"status": "unreachable", "metrics": ["flops"]}], ["accuracy"], None) == ((), None)
    # A failure that asked for everything wanted now stands, unless retried; an older one does not.
    failed = {"status": "error", "metrics": ["accuracy", "flops"]}
    assert pending_metrics([failed], ["accuracy"], None) == ((), None)
    assert pending_metrics([failed], ["accuracy"], None, retry_failed=True) == (("accuracy",), None)
    assert pending_metrics([failed, flops_only], ["accuracy", "flops"], None) == (("accuracy",), flops_only)
    # A failure on another device does not stand for this one's throughput.
    failed_b = {"status": "oom", "metrics": ["throughput"], "speed_id": "s1"}
    assert pending_metrics([failed_b], ["throughput"], "s2") == (("throughput",), None)
