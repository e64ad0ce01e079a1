"""The predictions store: batches written are read back identical; a file cut short by a
kill or a damaged frame loses only that frame; resumed runs' files are one union."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tokbench.errors import ResultsError
from tokbench.predictions import PredictionWarning, PredictionWriter, prediction_files, read_predictions

CELL = "0123456789abcdef"


def _batch(start: int, n: int, classes: int = 4):
    rng = np.random.default_rng(start)
    index = list(range(start, start + n))
    return index, [f"clip{i}" for i in index], [i % classes for i in index], rng.normal(size=(n, classes))


def test_written_batches_read_back_identical(tmp_path):
    batches = [_batch(0, 3), _batch(3, 2)]
    with PredictionWriter(tmp_path, CELL, "run-1") as writer:
        for batch in batches:
            writer.append(*batch)
    assert writer.rows == 5 and prediction_files(tmp_path, CELL) == [writer.path]
    pred = read_predictions(tmp_path, CELL)
    assert pred.index.tolist() == [0, 1, 2, 3, 4]
    assert pred.clip_id == [f"clip{i}" for i in range(5)] and pred.label == [0, 1, 2, 3, 0]
    expected = np.concatenate([b[3] for b in batches]).astype(np.float32)
    assert pred.scores.dtype == np.float32 and np.array_equal(pred.scores, expected)
    frame = pred.to_frame()
    assert list(frame.columns) == ["index", "clip_id", "label", "score_0", "score_1", "score_2", "score_3"]
    assert len(frame) == 5


def test_labels_of_every_task_round_trip(tmp_path):
    with PredictionWriter(tmp_path, CELL, "r") as writer:
        writer.append([0, 1], ["a", "b"], [[2, 5], []], np.zeros((2, 6)))  # multi-label: class ids present
        writer.append([2], ["c"], [[1, 3]], np.zeros((1, 6)))  # verb+noun: [verb, noun]
    assert read_predictions(tmp_path, CELL).label == [[2, 5], [], [1, 3]]


def test_a_killed_writer_leaves_every_complete_batch_readable(tmp_path):
    with PredictionWriter(tmp_path, CELL, "killed") as writer:
        writer.append(*_batch(0, 3))
        writer.append(*_batch(3, 3))
    data = writer.path.read_bytes()
    for cut in (len(data) - 1, len(data) - 30, len(data) // 2 + 5):
        writer.path.write_bytes(data[:cut])
        with pytest.warns(PredictionWarning, match="partial last frame"):
            assert read_predictions(tmp_path, CELL).index.tolist() == [0, 1, 2]


def test_a_process_killed_mid_write_leaves_a_readable_store(tmp_path):
    """A real SIGKILL between batches: every batch written before it is there."""
    script = textwrap.dedent(f'''
        import os, signal, numpy as np
        from tokbench.predictions import PredictionWriter
        w = PredictionWriter({str(tmp_path)!r}, {CELL!r}, "k")
        for b in range(3):
            w.append(list(range(b * 2, b * 2 + 2)), ["x", "y"], [0, 1], np.ones((2, 3)) * b)
        os.kill(os.getpid(), signal.SIGKILL)
    ''')
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    pred = read_predictions(tmp_path, CELL)
    assert pred.index.tolist() == [0, 1, 2, 3, 4, 5] and pred.scores[4:].tolist() == [[2, 2, 2]] * 2


def test_a_damaged_frame_is_dropped_and_the_rest_kept(tmp_path):
    with PredictionWriter(tmp_path, CELL, "r") as writer:
        writer.append(*_batch(0, 2))
        first = writer.path.stat().st_size
        writer.append(*_batch(2, 2))
    data = bytearray(writer.path.read_bytes())
    data[first - 3] ^= 0xFF  # a flipped bit in the first frame's scores
    writer.path.write_bytes(bytes(data))
    with pytest.warns(PredictionWarning, match="checksum"):
        assert read_predictions(tmp_path, CELL).index.tolist() == [2, 3]


def test_a_resumed_cell_is_the_union_of_its_runs(tmp_path):
    with PredictionWriter(tmp_path, CELL, "first") as writer:
        writer.append(*_batch(0, 2))
    with PredictionWriter(tmp_path, CELL, "second") as writer:
        writer.append(*_batch(2, 2))
        writer.append(*_batch(0, 1))  # a clip stored again is kept once, as first stored
    pred = read_predictions(tmp_path, CELL)
    assert pred.index.tolist() == [0, 1, 2, 3]
    assert np.array_equal(pred.scores[0], _batch(0, 2)[3][0].astype(np.float32))


def test_errors(tmp_path):
    with pytest.raises(ResultsError, match="no stored predictions"):
        read_predictions(tmp_path, CELL)
    with pytest.raises(ResultsError, match="is not a cell id"):
        read_predictions(tmp_path, "../../etc")
    with pytest.raises(ValueError, match="needs 2 ids, labels and score rows"):
        PredictionWriter(tmp_path, CELL, "r").append([0, 1], ["a"], [0, 1], np.zeros((2, 3)))


def test_every_accuracy_cell_stores_predictions_that_give_its_metrics(tmp_path):
    """The record's metrics are computed from exactly the stored rows: recomputing them from
    the store gives the same numbers to the last digit, and every metric has an interval."""
    import torch

    import tokbench
    from tokbench.benchmark.runner import Sweep, run_sweep
    from tokbench.data import DATASETS
    from tokbench.data.bootstrap import Scored, bootstrap_intervals

    sweep = Sweep(backbones=("synth_tiny",), methods=("none", "random"), p_ratios=(0.5,), device="cpu",
                  metrics=("accuracy", "flops"), checkpoint="zoo", limit=16,
                  datasets=("synth-motion", "synth-multilabel", "synth-egocentric"))
    records = run_sweep(sweep, results_dir=tmp_path).records
    assert len(records) == 6 and {r["status"] for r in records} == {"ok"}
    for r in records:
        pred = tokbench.load_predictions(tmp_path, r["cell_id"])
        assert len(pred) == r["clips"] == r["predictions"]["rows"] == 16
        assert pred.clip_id == [f"val-{i}" for i in range(16)]
        task = DATASETS.get(r["dataset"]).card.task
        scores = torch.from_numpy(pred.scores.astype("float32"))
        if task == "multilabel":
            labels = torch.zeros_like(scores, dtype=torch.long)
            for i, present in enumerate(pred.label):
                labels[i, present] = 1
        else:
            labels = torch.tensor(pred.label)
        card = DATASETS.get(r["dataset"]).card
        recomputed = bootstrap_intervals(Scored(task, scores, labels, num_verbs=getattr(card, "num_verbs", None)),
                                         resamples=r["bootstrap"]["resamples"], seed=r["bootstrap"]["seed"])
        for name, (value, lo, hi) in recomputed.items():
            assert value == r[name], (r["dataset"], name)
            assert (lo, hi) == (r[f"{name}_lo"], r[f"{name}_hi"])
            assert lo <= value <= hi
        assert r["bootstrap"] == {"resamples": 1000, "seed": 0, "level": 0.95}
    # The Python API's frame view, and the runs folder as the place to look from.
    frame = tokbench.load_predictions(tmp_path / "runs", records[0]["cell_id"]).to_frame()
    assert len(frame) == 16 and "score_0" in frame.columns
