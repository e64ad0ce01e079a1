"""Accuracy evaluation: metrics against a manual computation, view averaging, skipped
videos, and `tokbench run --dataset` end to end on a fake real-dataset layout."""

import json

import pytest
import torch
from click.testing import CliRunner
from fakedata import COL, corrupt, write_json, write_video

from tokbench.backbones import create_backbone
from tokbench.benchmark.evaluate import evaluate, head_size, predict
from tokbench.cli import cli
from tokbench.data import DataError, create_dataset
from tokbench.methods import build_method
from tokbench.store import load_results

TINY = {"frames": 4, "size": 32}  # test_tiny's geometry


@pytest.fixture(scope="module")
def diving(tmp_path_factory):
    """Diving48 V2 layout: 3 test videos (one corrupt), 3 classes."""
    root = tmp_path_factory.mktemp("diving48")
    write_json(root / "Diving48_vocab.json", [["a"], ["b"], ["c"]])
    write_json(root / "Diving48_V2_train.json", [{"vid_name": "t0", "label": 0, "start_frame": 0, "end_frame": 20}])
    write_json(root / "Diving48_V2_test.json", [
        {"vid_name": "v0", "label": 0, "start_frame": 0, "end_frame": 20},
        {"vid_name": "v1", "label": 2, "start_frame": 0, "end_frame": 20},
        {"vid_name": "broken", "label": 1, "start_frame": 0, "end_frame": 20},
    ])
    write_video(root / "rgb/t0.mp4", COL["a"])
    write_video(root / "rgb/v0.mp4", COL["b"])
    write_video(root / "rgb/v1.mp4", COL["c"])
    corrupt(root / "rgb/broken.mp4")
    return root


def test_single_label_metrics_match_a_manual_pass():
    ds = create_dataset("synth-motion", split="val", num_clips=12, **TINY)
    model = create_backbone("test_tiny", num_classes=head_size(ds))
    method = build_method("random", p_ratio=0.5)
    acc = evaluate(model, method, ds, batch_size=5)
    with torch.no_grad():
        logits = torch.cat([model(ds[i]["video"][None], method, clip_ids=torch.tensor([i])) for i in range(12)])
    labels = torch.tensor([ds[i]["label"] for i in range(12)])
    assert acc.clips == 12 and acc.views == 1 and acc.skipped_videos == 0
    assert acc.metrics["top1"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    top5 = (logits.topk(5, dim=1).indices == labels[:, None]).any(1).float().mean().item()
    assert acc.metrics["top5"] == pytest.approx(top5)


def test_verb_noun_dataset_gets_verb_plus_noun_logits():
    ds = create_dataset("synth-egocentric", split="val", num_clips=6, **TINY)
    assert head_size(ds) == 5 + 6
    model = create_backbone("test_tiny", num_classes=11)
    acc = evaluate(model, build_method("none"), ds, batch_size=4)
    assert set(acc.metrics) == {"verb_top1", "noun_top1", "action_top1"}
    assert acc.metrics["action_top1"] <= min(acc.metrics["verb_top1"], acc.metrics["noun_top1"])


def test_views_are_merged_as_the_protocol_says_and_corrupt_videos_counted(diving):
    ds = create_dataset("diving48", split="test", root=diving, **TINY)  # aim-diving48: 1 x 3, mean of softmax
    assert ds.views == 3 and ds.aggregation == "softmax" and len(ds) == 3
    model = create_backbone("test_tiny", num_classes=3)
    with pytest.warns(UserWarning, match="broken"):
        acc = evaluate(model, build_method("none"), ds, batch_size=2)
    assert acc.clips == 2 and acc.views == 3 and acc.skipped_videos == 1 and acc.skipped_ids == ["broken"]
    assert acc.aggregation == "softmax"
    with torch.no_grad():
        per_video = torch.stack([model(ds[i]["video"]).softmax(-1).mean(0) for i in (0, 1)])  # mean of 3 softmaxes
    merged = predict(model, build_method("none"), ds, batch_size=2).logits  # warned once per dataset, above
    assert torch.allclose(merged, per_video, atol=1e-6)
    labels = torch.tensor([0, 2])
    assert acc.metrics["top1"] == pytest.approx((per_video.argmax(1) == labels).float().mean().item())
    # The same videos under tokbench's segment protocol, 2 x 3 views: the mean of the 6 views' logits.
    ds = create_dataset("diving48", split="test", root=diving, protocol="tokbench-segments", temporal_clips=2,
                        spatial_crops=3, **TINY)
    assert ds.views == 6 and ds.aggregation == "logits"
    with torch.no_grad():
        per_video = torch.stack([model(ds[i]["video"]).mean(0) for i in (0, 1)])
    with pytest.warns(UserWarning, match="broken"):
        assert torch.allclose(predict(model, build_method("none"), ds, batch_size=2).logits, per_video, atol=1e-6)


def test_a_dataset_with_no_readable_video_is_an_error(tmp_path):
    write_json(tmp_path / "Diving48_vocab.json", [["a"]])
    write_json(tmp_path / "Diving48_V2_train.json", [])
    write_json(tmp_path / "Diving48_V2_test.json", [{"vid_name": "x", "label": 0, "start_frame": 0, "end_frame": 9}])
    corrupt(tmp_path / "rgb/x.mp4")
    ds = create_dataset("diving48", split="test", root=tmp_path, **TINY)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no video of diving48 could be read"):
        evaluate(create_backbone("test_tiny", num_classes=1), build_method("none"), ds)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.filterwarnings("ignore::tokbench.data.real.SkippedVideoWarning")  # counted in the records instead
def test_run_with_a_real_dataset_layout_end_to_end(diving, tmp_path):
    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": create_backbone("test_tiny", num_classes=3).state_dict()}, ckpt)
    results = tmp_path / "results"
    r = invoke("run", "--dataset", "diving48", "--data-root", diving, "--backbone", "test_tiny", "--checkpoint", ckpt,
               "--methods", "none,random", "--p-ratio", "0.5", "--repeats", "1", "--warmup", "0", "--results", results)
    assert r.exit_code == 0, r.stderr
    df = load_results(results).sort_values("method")
    assert df["status"].tolist() == ["ok", "ok"], df["error"].tolist()
    assert df["dataset"].tolist() == ["diving48"] * 2 and df["split"].tolist() == ["test"] * 2
    assert df["skipped_videos"].tolist() == [1, 1] and df["clips"].tolist() == [2, 2] and df["views"].tolist() == [3, 3]
    assert df["top1"].between(0, 1).all() and df["gflops"].gt(0).all() and df["clips_per_s"].gt(0).all()
    assert df["eval_protocol"].tolist() == ["aim-diving48"] * 2 and df["view_averaging"].tolist() == ["softmax"] * 2
    params = df.iloc[0]  # nested fields load as dotted columns
    assert [params[f"eval_protocol_params.{k}"] for k in ("sampling", "spatial", "temporal_clips", "spatial_crops")] == [
        "seq-frames", "mmaction", 1, 3]
    assert "diving48" in r.stdout and "top1" in r.stdout and "skipped" in r.stdout
    # Same command again: every cell is already stored.
    again = invoke("run", "--dataset", "diving48", "--data-root", diving, "--backbone", "test_tiny", "--checkpoint",
                   ckpt, "--methods", "none,random", "--p-ratio", "0.5", "--repeats", "1", "--warmup", "0",
                   "--results", results)
    assert again.exit_code == 0 and "skipped 2 cells" in again.stderr
    # Another protocol, or other views or aggregation, are other cells: measured, not skipped.
    other = invoke("run", "--dataset", "diving48", "--data-root", diving, "--backbone", "test_tiny", "--checkpoint",
                   ckpt, "--methods", "none", "--metrics", "accuracy", "--eval-protocol", "tokbench-segments",
                   "--eval-views", "2x3", "--eval-aggregation", "softmax", "--results", results)
    assert other.exit_code == 0, other.stderr
    assert "cells already in" not in other.stderr
    new = load_results(results)
    new = new[new["eval_protocol"] == "tokbench-segments"]
    assert len(new) == 1 and new["views"].tolist() == [6] and new["view_averaging"].tolist() == ["softmax"]
    assert new["eval_protocol_params.temporal_clips"].tolist() == [2]


def test_run_synthetic_accuracy_without_throughput(tmp_path):
    r = invoke("run", "--dataset", "synth-gesture", "--backbone", "test_tiny", "--methods", "none", "--limit", "5",
               "--metrics", "accuracy", "--results", tmp_path)
    assert r.exit_code == 0, r.stderr
    record = json.loads(next(tmp_path.rglob("*.jsonl")).read_text().splitlines()[0])
    assert record["dataset"] == "synth-gesture" and record["clips"] == 5 and record["num_classes"] == 8
    assert "gflops" not in record and 0 <= record["top1"] <= 1 and record["view_averaging"] == "logits"


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--metrics", "accuracy"], "the accuracy metric needs a dataset"),
        (["--dataset", "ssv2"], "needs its data folder"),
        (["--dataset", "ssv2", "--data-root", "/does/not/exist"], "--data-root /does/not/exist: no such folder"),
        (["--dataset", "synth-motoin"], "Did you mean 'synth-motion'"),
        (["--dataset", "synth-motion", "--num-classes", "7"], "does not fit synth-motion, which needs 10 outputs"),
        (["--dataset", "synth-motion", "--split", "dev"], "has no split 'dev'"),
        (["--dataset", ""], "empty --dataset"),
        (["--dataset", "synth-motion", "--eval-views", "2x3"], "synth-motion is synthetic and keeps its own protocol"),
        (["--dataset", "synth-motion", "--eval-views", "2by3"], "--eval-views '2by3': give temporal clips x spatial"),
    ],
)
def test_bad_dataset_input_is_one_line_and_writes_nothing(tmp_path, args, fragment):
    r = invoke("run", "--backbone", "test_tiny", "--methods", "none", "--limit", "4", "--results", tmp_path / "res", *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and fragment in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "res").exists()
