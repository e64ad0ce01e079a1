"""`tokbench check`: hand-made records against the comparison rules, the CLI's exit codes
on the committed baseline and a perturbed copy, and --update."""

import json
from pathlib import Path

from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.report.check import compare, latest_by_cell, markdown

BASELINE = Path(__file__).resolve().parents[1] / "results" / "baseline"


def _record(cell="a", **fields):
    base = {"cell_id": cell, "status": "ok", "dataset": "synth-motion", "method_id": "random", "p_ratio": 0.5,
            "gflops": 0.1, "params_m": 0.5, "tokens_kept": 144.0, "top1": 0.8, "top5": 1.0, "clips_per_s": 100.0,
            "device": "cpu", "env": {"device_name": "cpu-x"}, "created_utc": "2026-01-01T00:00:00"}
    return {**base, **fields}


def test_identical_records_pass():
    findings, counts = compare([_record()], [_record()])
    assert findings == [] and counts == {"compared": 1, "regressions": 0, "missing": 0, "new": 0,
                                         "speed_compared": 1, "speed_skipped": 0}


def test_cost_must_match_exactly_and_accuracy_may_not_drop():
    findings, counts = compare([_record()], [_record(gflops=0.1000001, top1=0.75, top5=1.0)])
    assert counts["regressions"] == 2
    assert {(f.field, f.regression) for f in findings} == {("gflops", True), ("top1", True)}
    # Within the tolerance a drop passes; a rise is reported but never fails.
    findings, counts = compare([_record()], [_record(top1=0.76, top5=1.0)], accuracy_tol=0.05)
    assert counts["regressions"] == 0 and findings == []
    findings, counts = compare([_record(top1=0.7)], [_record(top1=0.8)])
    assert counts["regressions"] == 0 and [(f.field, f.regression) for f in findings] == [("top1", False)]


def test_speed_only_on_the_same_device_and_outside_the_band():
    slow = _record(clips_per_s=40.0)
    assert compare([_record()], [slow])[1]["regressions"] == 1
    assert compare([_record()], [_record(clips_per_s=60.0)])[1]["regressions"] == 0  # within 0.5x
    assert compare([_record()], [{**slow, "env": {"device_name": "other"}}])[1]["regressions"] == 0
    assert compare([_record()], [slow], speed_band=None)[1]["regressions"] == 0


def test_missing_new_and_status_changes():
    base = [_record("a"), _record("b"), _record("c", status="unreachable"), _record("d", status="error")]
    cur = [_record("a", status="error", error="boom"), _record("c"), _record("d"), _record("e")]
    findings, counts = compare(base, cur)
    assert counts == {"compared": 3, "regressions": 2, "missing": 1, "new": 1, "speed_compared": 0, "speed_skipped": 0}
    verdicts = {(f.field, f.baseline, f.current): f.regression for f in findings}
    assert verdicts[("status", "ok", "error")] and verdicts[("cell", "ok", None)]
    assert not verdicts[("status", "unreachable", "ok")] and not verdicts[("status", "error", "ok")]
    assert "**regression**" in markdown(findings, counts) and "boom" in markdown(findings, counts)


def test_latest_record_of_a_cell_wins():
    old, new = _record(top1=0.1, created_utc="2026-01-01"), _record(top1=0.9, created_utc="2026-02-01")
    assert latest_by_cell([new, old])["a"]["top1"] == 0.9


def test_cli_passes_on_the_baseline_and_fails_on_a_perturbed_copy(tmp_path):
    records = [json.loads(line) for line in (BASELINE / "baseline.jsonl").read_text().splitlines()]
    assert len(records) > 100 and {r["dataset"] for r in records} >= {"synth-motion", "synth-gesture"}
    same = tmp_path / "same.jsonl"
    same.write_text("".join(json.dumps(r) + "\n" for r in records))
    ok = CliRunner().invoke(cli, ["check", "--baseline", str(BASELINE), "--results", str(same), "--no-speed"])
    n = len({r["cell_id"] for r in records})
    assert ok.exit_code == 0 and f"**0 regression(s)** in {n} compared cells" in ok.output
    perturbed = [dict(r) for r in records]
    victim = next(r for r in perturbed if r["method"] == "lookwhen" and r["status"] == "ok" and r.get("top1"))
    victim["top1"] -= 0.25
    flops = next(r for r in perturbed if r["method"] == "tome" and r["status"] == "ok")
    flops["gflops"] *= 1.01
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in perturbed[:-1]))  # and one cell missing
    out = tmp_path / "report.md"
    r = CliRunner().invoke(cli, ["check", "--baseline", str(BASELINE), "--results", str(bad), "--no-speed",
                                 "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "**3 regression(s)**" in r.output and "dropped 25.00 points" in r.output and "gflops" in r.output
    assert out.read_text() == r.stdout  # the Markdown report; what was compared goes to stderr
    assert "baseline: " in r.stderr and "current: " in r.stderr and f"{n - 1} records of {n - 1} cells" in r.stderr


def test_cli_update_rewrites_the_baseline_and_errors_are_one_line(tmp_path):
    records = [_record("a"), _record("a", top1=0.5, created_utc="2026-03-01"), _record("b")]
    current = tmp_path / "cur.jsonl"
    current.write_text("".join(json.dumps(r) + "\n" for r in records))
    base = tmp_path / "base"
    base.mkdir()
    (base / "old.jsonl").write_text(json.dumps(_record("a", top1=0.1)) + "\n")
    r = CliRunner().invoke(cli, ["check", "--baseline", str(base), "--results", str(current), "--update"])
    assert r.exit_code == 0 and "wrote 2 baseline cells" in r.output
    assert [p.name for p in base.iterdir()] == ["baseline.jsonl"]
    rows = [json.loads(line) for line in (base / "baseline.jsonl").read_text().splitlines()]
    assert [(r["cell_id"], r["top1"]) for r in rows] == [("a", 0.5), ("b", 0.8)]  # the newest of each cell
    assert CliRunner().invoke(cli, ["check", "--baseline", str(base), "--results", str(current)]).exit_code == 0
    missing = CliRunner().invoke(cli, ["check", "--baseline", str(tmp_path / "nope"), "--results", str(current)])
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    empty = CliRunner().invoke(cli, ["check", "--baseline", str(base), "--results", str(tmp_path / "none")])
    assert empty.exit_code == 2 and "no records under --results" in empty.stderr


def test_speed_uses_the_recorded_intervals_and_skips_busy_records():
    base = _record(clips_per_s=100.0, clips_per_s_lo=90.0, clips_per_s_hi=110.0, speed_id="s")
    # Half the median, but the current interval reaches above half the baseline's bottom (45): noise.
    noisy = _record(clips_per_s=40.0, clips_per_s_lo=20.0, clips_per_s_hi=50.0, speed_id="s")
    findings, counts = compare([base], [noisy])
    assert counts["regressions"] == 0 and counts["speed_compared"] == 1
    slow = _record(clips_per_s=40.0, clips_per_s_lo=38.0, clips_per_s_hi=44.0, speed_id="s")
    findings, counts = compare([base], [slow])
    assert [(f.field, f.regression) for f in findings] == [("clips_per_s", True)]
    busy = dict(slow, speed_flags=["busy"])
    findings, counts = compare([base], [busy])
    assert counts["regressions"] == 0 and counts["speed_compared"] == 0 and counts["speed_skipped"] == 1
    assert "timed while the machine was busy" in findings[0].note


def test_accuracy_intervals_forgive_only_drops_inside_the_baseline_interval():
    base = _record(top1=0.80, top1_lo=0.76, top1_hi=0.84)
    inside, below = _record(top1=0.77), _record(top1=0.75)
    # Without --accuracy-intervals, any drop beyond the tolerance fails, as before.
    assert compare([base], [inside], accuracy_tol=0.01)[1]["regressions"] == 1
    findings, counts = compare([base], [inside], accuracy_tol=0.01, intervals=True)
    assert counts["regressions"] == 0
    assert [(f.field, f.regression) for f in findings] == [("top1", False)]
    assert "within the baseline's 95 % interval (from 76.00)" in findings[0].note
    assert compare([base], [below], accuracy_tol=0.01, intervals=True)[1]["regressions"] == 1
    # A baseline record without an interval: the tolerance alone decides.
    assert compare([_record(top1=0.80)], [inside], accuracy_tol=0.01, intervals=True)[1]["regressions"] == 1
    r = CliRunner().invoke(cli, ["check", "--help"])
    assert "--accuracy-intervals" in r.output
