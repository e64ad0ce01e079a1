"""One pass over the data per group of cells: the grouping rule, records identical to the
one-cell-at-a-time path, a member that fails leaving the others going, and resume after a
SIGKILL mid-pass decoding only the clips some cell still lacks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace

from tokbench.benchmark.groups import group_key, split_groups
from tokbench.benchmark.runner import Sweep, run_sweep
from tokbench.hooks import Method
from tokbench.store import load_records

METRIC_FIELDS = ("top1", "top5", "mAP", "verb_top1", "noun_top1", "action_top1", "clips", "skipped_videos",
                 "gflops", "tokens_kept", "status")


@dataclass(frozen=True)
class _Geometry:
    num_frames: int
    img_size: int = 48
    in_chans: int = 3


def _cell(dataset, checkpoint="w", frames=16, method="random"):
    return SimpleNamespace(dataset=dataset, split="val", config=_Geometry(frames), checkpoint=checkpoint,
                           method_name=method)


class _Own(Method):
    def model(self, backbone):
        return backbone


def test_groups_share_clips_and_respect_the_limits():
    cells = [_cell("a"), _cell("b"), _cell("a", method="own"), _cell("a", frames=8), _cell("a", checkpoint="v")]
    kinds = {"random": Method, "own": _Own}
    groups = split_groups(cells, lambda c: kinds[c.method_name])
    # a (two checkpoints and one method with its own network: 3 networks), b, and a at 8 frames
    assert [[cells.index(c) for c in g] for g in groups] == [[0, 2, 4], [1], [3]]
    assert group_key(cells[0]) == group_key(cells[4]) != group_key(cells[3])
    # at most 2 cells, at most 2 networks
    assert [[cells.index(c) for c in g] for g in split_groups(cells, lambda c: kinds[c.method_name], max_cells=2)] == \
        [[0, 2], [1], [3], [4]]
    assert [[cells.index(c) for c in g] for g in split_groups(cells, lambda c: kinds[c.method_name], max_networks=2)] == \
        [[0, 2], [1], [3], [4]]


def _sweep(**kw) -> Sweep:
    base = dict(backbones=("synth_tiny",), methods=("none", "random", "motion", "oracle", "tome"), p_ratios=(0.5,),
                device="cpu", metrics=("accuracy", "flops"), checkpoint="zoo", limit=24, eval_batch_size=8,
                datasets=("synth-motion", "synth-multilabel", "synth-egocentric"))
    return Sweep(**{**base, **kw})


def _by_cell(records):
    return {r["cell_id"]: r for r in records}


def test_a_group_pass_gives_the_records_of_one_pass_per_cell(tmp_path):
    grouped = _by_cell(run_sweep(_sweep(), results_dir=tmp_path / "g").records)
    alone = _by_cell(run_sweep(_sweep(group_cells=1), results_dir=tmp_path / "a").records)
    assert grouped.keys() == alone.keys() and len(grouped) == 15
    for key, g in grouped.items():
        a = alone[key]
        for field in (*METRIC_FIELDS, *(f for f in g if f.endswith(("_lo", "_hi")))):
            assert g.get(field) == a.get(field), (g["dataset"], g["method_id"], field)
        assert g["group"]["cells"] == 5 and a["group"]["cells"] == 1  # each dataset's five cells in one pass
        assert g["group"]["clips_decoded"] == 24


class FailsLate(Method):
    """Full model; raises on the clips of its second batch."""

    name = "fails_late"
    uses_p_ratio = False

    def after_embed(self, tokens, clips):
        if int(clips.ids.min()) >= 8:
            raise RuntimeError("fails_late gives up")
        return tokens


def test_a_member_that_fails_leaves_the_group_going(tmp_path):
    from tokbench.methods import METHODS

    with METHODS.temporary("fails_late", FailsLate):
        records = run_sweep(_sweep(methods=("fails_late", "random"), datasets=("synth-motion",)),
                            results_dir=tmp_path / "r").records
    by_method = {r["method"]: r for r in records}
    assert by_method["fails_late"]["status"] == "error" and "fails_late gives up" in by_method["fails_late"]["error"]
    assert by_method["random"]["status"] == "ok" and by_method["random"]["clips"] == 24
    assert by_method["random"]["group"]["cells"] == 2  # they shared the pass


SLOW = textwrap.dedent('''
    import time
    from tokbench.methods import SelectionMethod, register_method

    @register_method("slow")
    class Slow(SelectionMethod):
        """Keeps the first tubelets, slowly (a test's stand-in for a long evaluation)."""
        scores_need_tokens = False

        def scores(self, clips, tokens, num_patches):
            if clips.video.device.type != "meta":
                time.sleep(0.15)
            import torch
            return -torch.arange(num_patches, device=clips.video.device).float().expand(clips.video.shape[0], -1)
''')


def _frames_of(results, key) -> set[int]:
    import warnings

    from tokbench.predictions import read_predictions

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return set(read_predictions(results, key).index.tolist())
        except Exception:  # noqa: BLE001 - no predictions yet
            return set()


def test_resume_after_sigkill_mid_group_decodes_only_the_missing_clips(tmp_path):
    plugin = tmp_path / "slow.py"
    plugin.write_text(SLOW)
    results = tmp_path / "r"
    args = ["--plugin", str(plugin), "run", "--dataset", "synth-motion", "--methods", "none,slow", "--p-ratio", "0.5",
            "--limit", "64", "--eval-batch-size", "4", "--metrics", "accuracy", "--results", str(results)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tokbench", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline, keys = time.time() + 300, []
        while time.time() < deadline and (len(keys) < 2 or min(len(_frames_of(results, k)) for k in keys) < 12):
            time.sleep(0.2)
            folder = results / "predictions"
            keys = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = {k: _frames_of(results, k) for k in keys}
    assert all(12 <= len(f) < 64 for f in before.values()), "the pass was killed in the middle"
    missing = set(range(64)) - (before[keys[0]] & before[keys[1]])
    again = subprocess.run([sys.executable, "-m", "tokbench", *args], env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    records = load_records(results)
    assert Counter(r["cell_id"] for r in records if r["status"] == "ok") == Counter(keys)  # each cell exactly once
    for r in records:
        assert r["clips"] == 64 and r["group"]["cells"] == 2
        assert r["group"]["clips_decoded"] == len(missing)  # only what some cell lacked
    # The metrics of the resumed cells equal those of an uninterrupted run.
    clean = subprocess.run([sys.executable, "-m", "tokbench", *args[:-1], str(tmp_path / "clean")], env=env,
                           capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    fresh = _by_cell(load_records(tmp_path / "clean"))
    for r in records:
        assert r["top1"] == fresh[r["cell_id"]]["top1"] and r["top1_lo"] == fresh[r["cell_id"]]["top1_lo"]
    assert json.loads(json.dumps(r["group"]))  # the group facts are plain JSON
