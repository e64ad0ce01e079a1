"""Sharded evaluation under torchrun: every video exactly once, metrics identical to one
process (2 processes, gloo, CPU)."""

import os
import subprocess
import sys

import pytest
import torch

from tokbench.benchmark.distributed import SINGLE, Shard, World
from tokbench.benchmark.evaluate import Predictions, merge_predictions
from tokbench.store import load_records


class Items:
    card = "a card"
    views = 2

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": i}


@pytest.mark.parametrize("n,size", [(37, 2), (5, 3), (2, 4), (0, 2)])
def test_shards_cover_every_item_exactly_once_without_padding(n, size):
    shards = [Shard(Items(n), rank, size) for rank in range(size)]
    seen = sorted(s[i]["index"] for s in shards for i in range(len(s)))
    assert seen == list(range(n))  # no item twice, none missing, no padding
    assert shards[0].card == "a card" and shards[-1].views == 2  # the dataset's attributes
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_merged_shards_are_one_process_order():
    logits = torch.randn(7, 3)
    labels = torch.arange(7)
    parts = [Predictions(logits=logits[r::2], labels=labels[r::2], index=torch.arange(7)[r::2], skipped=[f"s{r}"])
             for r in range(2)]
    merged = merge_predictions(parts)
    assert torch.equal(merged.logits, logits) and torch.equal(merged.labels, labels)
    assert merged.index.tolist() == list(range(7)) and merged.skipped == ["s0", "s1"]
    empty = Predictions(logits=torch.zeros(0, 0), labels=torch.zeros(0), index=torch.zeros(0, dtype=torch.long))
    assert torch.equal(merge_predictions([parts[0], empty]).logits, logits[0::2])  # an empty shard adds nothing


def test_single_process_world_is_a_no_op():
    assert not SINGLE.distributed and SINGLE.is_main and SINGLE.all_gather(3) == [3] and SINGLE.broadcast(4) == 4
    assert SINGLE.describe() is None and World(rank=1, size=2, backend="gloo").describe() == {
        "world_size": 2, "backend": "gloo"}


RUN = ["run", "--dataset", "synth-multilabel,synth-egocentric", "--methods", "none,random,rlt", "--p-ratio", "0.3",
       "--limit", "37", "--metrics", "accuracy,flops"]
METRICS = ("mAP", "verb_top1", "noun_top1", "action_top1", "clips", "gflops", "tokens_kept", "status", "cell_id")


def _records(folder):
    return {(r["dataset"], r["method_id"]): r for r in load_records(folder / "runs")}


def test_torchrun_two_processes_gives_one_process_metrics(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "tokbench", *RUN, "--results", str(tmp_path / "one")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "tokbench", *RUN, "--results", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert len(b) == len(load_records(tmp_path / "two")) == 6  # one record per cell, written by rank 0 only
    assert a.keys() == b.keys()
    for key in a:
        assert b[key]["distributed"] == {"world_size": 2, "backend": "gloo"}
        assert {m: a[key].get(m) for m in METRICS} == {m: b[key].get(m) for m in METRICS}, key
        assert b[key]["clips"] == 37  # every video once: 19 + 18, no padding duplicate
    assert two.stderr.count("tokbench run: 6 cells") == 1  # only rank 0 talks
    # Resume across launch modes: the cell ids are the same, so nothing is re-run.
    again = subprocess.run([sys.executable, "-m", "tokbench", *RUN, "--results", str(tmp_path / "two")],
                           capture_output=True, text=True, env=env, timeout=300)
    assert "skipped 6 cells" in again.stderr, again.stderr
