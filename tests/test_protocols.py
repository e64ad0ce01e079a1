"""Evaluation protocols: hand-worked frame indices of each published rule, crop offsets,
view merging, options, cell ids, records and bad input (one line, exit 2).

Index lists are worked out by hand from the upstream formulas quoted in
tokbench/data/sampling.py (MCG-NJU/VideoMAE kinetics.py and ssv2.py, SlowFast-style
get_seq_frames, Motionformer frame_loader.py, SlowFast charades.py).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from fakedata import COL, write_csv, write_json, write_video

from tokbench.backbones import create_backbone
from tokbench.benchmark.evaluate import evaluate, predict
from tokbench.cli import cli
from tokbench.data import DATASETS, create_dataset
from tokbench.data.base import IMAGENET_MEAN, IMAGENET_STD
from tokbench.data.metrics import merge_views
from tokbench.data.protocols import PROTOCOLS, get_protocol
from tokbench.data.sampling import epic_fps, motionformer_epic, seq_frames, slowfast_charades, videomae_kinetics, videomae_ssv2
from tokbench.data.spatial import crop_offsets, resized_size
from tokbench.errors import TokbenchError, UnknownNameError
from tokbench.methods import build_method

TINY = {"frames": 4, "size": 32}

# --------------------------------------------------------------------------- VideoMAE K400


def test_videomae_kinetics_250_frames():
    # every 4th frame: 0, 4, ..., 248 (63 frames); window c starts at int(c * (63 - 16) / 4) = 0, 11, 23, 35, 47
    clips = videomae_kinetics(250)
    assert [c[0] for c in clips] == [0, 44, 92, 140, 188]
    assert clips[0] == list(range(0, 64, 4)) and clips[4] == list(range(188, 252, 4))


def test_videomae_kinetics_100_frames():
    # 0, 4, ..., 96 (25 frames); step (25 - 16) / 4 = 2.25 -> starts 0, 2, 4, 6, 9
    clips = videomae_kinetics(100)
    assert [c[0] for c in clips] == [0, 8, 16, 24, 36] and clips[4][-1] == 96


def test_videomae_kinetics_exactly_one_window():
    # 64 frames: 16 sampled frames, step 0: the five windows are the same
    assert videomae_kinetics(64) == [list(range(0, 64, 4))] * 5


def test_videomae_kinetics_shorter_than_the_window_repeats_the_last_frame():
    # 30 frames: 0, 4, ..., 28 (8 frames), then 28 repeated up to 16
    assert videomae_kinetics(30) == [[0, 4, 8, 12, 16, 20, 24, 28] + [28] * 8] * 5
    assert videomae_kinetics(1) == [[0] * 16] * 5


def test_videomae_kinetics_needs_two_clips_as_upstream():
    with pytest.raises(TokbenchError, match="at least 2 temporal clips"):
        videomae_kinetics(100, clips=1)


# --------------------------------------------------------------------------- VideoMAE SSv2


def test_videomae_ssv2_61_frames_both_clips_span_the_video():
    # tick = 61 / 16 = 3.8125; starts int(3.8125 x), centres int(1.90625 + 3.8125 x)
    first, second = videomae_ssv2(61)
    assert first == [0, 3, 7, 11, 15, 19, 22, 26, 30, 34, 38, 41, 45, 49, 53, 57]
    assert second == [1, 5, 9, 13, 17, 20, 24, 28, 32, 36, 40, 43, 47, 51, 55, 59]


def test_videomae_ssv2_32_frames():
    assert videomae_ssv2(32) == [list(range(0, 32, 2)), list(range(1, 32, 2))]


def test_videomae_ssv2_shorter_than_16_frames_keeps_duplicates():
    # 10 frames: tick 0.625; starts 0 0 1 1 2 3 3 4 5 5 6 6 7 8 8 9, centres 0 0 1 2 2 3 4 4 5 5 6 7 7 8 9 9;
    # sorted together (32 indices) and dealt alternately.
    first, second = videomae_ssv2(10)
    assert first == [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9]
    assert second == [0, 0, 1, 2, 2, 3, 4, 4, 5, 5, 6, 7, 7, 8, 9, 9]
    assert videomae_ssv2(1) == [[0] * 16, [0] * 16]


def test_videomae_ssv2_makes_exactly_two_clips():
    with pytest.raises(TokbenchError, match="exactly 2 temporal clips"):
        videomae_ssv2(61, clips=3)


# --------------------------------------------------------------------------- seq-frames (AIM, DirecFormer)


def test_seq_frames_by_hand():
    # 12 frames: seg 11 / 4 = 2.75 -> (0 + 3) // 2, (3 + 6) // 2, (6 + 8) // 2, (8 + 11) // 2 (5.5 rounds to 6)
    assert seq_frames(12, frames=4) == [[1, 4, 7, 9]]
    # 37 frames, 16 frames: seg 2.25; round(2.25 i) = 0 2 4 7 9 11 14 16 18 20 22 25 27 29 32 34 36
    assert seq_frames(37) == [[1, 3, 5, 8, 10, 12, 15, 17, 19, 21, 23, 26, 28, 30, 33, 35]]


def test_seq_frames_shorter_than_the_clip():
    # 3 frames, 4 wanted: seg 0.5; round(0, .5, 1, 1.5, 2) = 0, 0, 1, 2, 2 (half to even)
    assert seq_frames(3, frames=4) == [[0, 0, 1, 2]]
    assert seq_frames(1, frames=4) == [[0, 0, 0, 0]]


# --------------------------------------------------------------------------- Motionformer EPIC


def test_motionformer_epic_long_segment():
    # 300 frames at 50 fps: window 16 * 4 * 50 / 30 = 106.67 frames; delta 193.33; clip c starts at delta * c / 10
    clips = motionformer_epic(300, fps=50)
    assert clips[0] == [1, 8, 15, 22, 29, 36, 43, 50, 57, 64, 71, 78, 85, 92, 99, 106]
    assert clips[9][0] == 175 and clips[9][-1] == 280  # start 174 + 1; the last window stops short of frame 299


def test_motionformer_epic_short_segment_clamps_to_the_last_frame():
    # 16 frames at 60 fps, 4 frames stride 4: window 32 > 16 -> delta 0, linspace(1, 32, 4) clamped to 15
    assert motionformer_epic(16, frames=4, stride=4, clips=3, fps=60) == [[1, 11, 15, 15]] * 3


def test_epic_frame_rate_from_the_video_number():
    assert epic_fps("P01_101_3") == 50 and epic_fps("P01_01_3") == 60 and epic_fps("P30_112") == 50


# --------------------------------------------------------------------------- SlowFast Charades


def test_slowfast_charades_by_hand():
    # 200 frames, 16 frames stride 4: window 61; gap 139 / 9; starts round(15.44 c)
    clips = slowfast_charades(200)
    assert [c[0] for c in clips] == [0, 15, 31, 46, 62, 77, 93, 108, 124, 139]
    assert clips[9] == list(range(139, 200, 4))


def test_slowfast_charades_short_video_repeats_the_last_frame():
    assert slowfast_charades(10, frames=4, stride=4, clips=2) == [[0, 4, 8, 9], [0, 4, 8, 9]]
    with pytest.raises(TokbenchError, match="at least 2 temporal clips"):
        slowfast_charades(10, clips=1)


# --------------------------------------------------------------------------- resize and crops


def test_short_side_sizes_of_each_rule():
    # 240 x 320 to short side 224: 224 * 320 / 240 = 298.67
    assert resized_size(240, 320, 224, "videomae") == (224, 298)  # int(size * long / short)
    assert resized_size(240, 320, 224, "slowfast") == (224, 298)  # floor(long / short * size)
    assert resized_size(240, 320, 224, "mmaction") == (224, 299)  # int(long * scale + 0.5)
    assert resized_size(320, 240, 224, "videomae") == (298, 224)
    assert resized_size(224, 400, 224, "videomae") == (224, 400)  # short side already 224: unchanged


def test_three_crop_offsets_along_the_long_side():
    # VideoMAE: int(k * (L - 224) / 2)
    assert crop_offsets(224, 298, 224, 3, "videomae") == [(0, 0), (0, 37), (0, 74)]
    assert crop_offsets(224, 299, 224, 3, "videomae") == [(0, 0), (0, 37), (0, 75)]
    assert crop_offsets(298, 224, 224, 3, "videomae") == [(0, 0), (37, 0), (74, 0)]  # portrait: along the height
    assert crop_offsets(224, 224, 224, 3, "videomae") == [(0, 0)] * 3
    # SlowFast uniform_crop: 0, ceil((L - S) / 2), L - S; mmaction ThreeCrop: left, right 2 s, middle s
    assert crop_offsets(224, 299, 224, 3, "slowfast") == [(0, 0), (0, 38), (0, 75)]
    assert crop_offsets(224, 299, 224, 3, "mmaction") == [(0, 0), (0, 74), (0, 37)]
    assert crop_offsets(224, 299, 224, 1, "slowfast") == [(0, 38)]
    assert crop_offsets(224, 299, 224, 1, "videomae") == [(0, 38)]  # CenterCrop: int(round(37.5)) = 38


def test_crop_counts_a_rule_has_no_arithmetic_for():
    with pytest.raises(TokbenchError, match="takes 1 or 3 spatial crops, got 2"):
        crop_offsets(224, 299, 224, 2, "slowfast")
    assert crop_offsets(224, 324, 224, 5, "videomae") == [(0, 0), (0, 25), (0, 50), (0, 75), (0, 100)]


def _column_clip(T, H, W):
    """uint8 (T, H, W, 3) whose pixels hold their column index."""
    return torch.arange(W, dtype=torch.uint8).view(1, 1, W, 1).expand(T, H, W, 3).contiguous()


def test_videomae_views_crop_the_columns_upstream_takes():
    p = get_protocol("videomae-ssv2", size=8)  # 2 x 3 views
    out = p.to_views([_column_clip(2, 8, 23), _column_clip(2, 8, 23)])  # short side 8 already: no resize
    assert out.shape == (6, 3, 2, 8, 8)
    firsts = [round(float((v[0, 0, 0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255)) for v in out]
    assert firsts == [0, 7, 15] * 2  # int(k * 15 / 2) = 0, 7, 15


def test_videomae_resize_is_bilinear_without_antialiasing():
    # Columns 255, 0, 0, 0 repeating, 8 x 16 -> 4 x 8: bilinear without antialiasing samples at
    # 2j + 0.5, the mean of columns 2j and 2j + 1: 127.5 (cv2 returns uint8: 128) and 0, alternately.
    # An antialiased resize would give about 96 and 32. The centre crop (CenterCrop) starts at column 2.
    pattern = (torch.arange(16) % 4 == 0).to(torch.uint8) * 255
    clip = pattern.view(1, 1, 16, 1).expand(1, 8, 16, 3).contiguous()
    p = get_protocol("videomae-ssv2", size=4, spatial_crops=1)
    view = p.to_views([clip, clip])[0]  # (C, T, 4, 4)
    pix = (view[0, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255
    assert torch.allclose(pix, torch.tensor([128.0, 0.0, 128.0, 0.0]).expand(4, 4), atol=1e-3)


# --------------------------------------------------------------------------- view merging


def test_softmax_mean_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])  # one video, two views: probs (.5, .5), (.75, .25)
    assert torch.allclose(merge_views(logits, 2, "softmax"), torch.tensor([[0.625, 0.375]]))
    assert torch.allclose(merge_views(logits, 2, "logits"), torch.tensor([[math.log(3.0) / 2, 0.0]]))


def test_softmax_mean_and_logits_mean_can_disagree():
    # view 1 is sure of class 0, views 2 and 3 mildly prefer class 1: logits mean (1, 2/3) picks 0,
    # softmax mean ((.953 + 2 * .269) / 3, (.047 + 2 * .731) / 3) = (.497, .503) picks 1
    logits = torch.tensor([[3.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert merge_views(logits, 3, "logits").argmax().item() == 0
    assert merge_views(logits, 3, "softmax").argmax().item() == 1


def test_sigmoid_max_and_grouped_softmax():
    logits = torch.tensor([[0.0, -2.0], [1.0, -3.0]])
    assert torch.allclose(merge_views(logits, 2, "sigmoid-max"), torch.tensor([[1.0, -2.0]]).sigmoid())
    # verb (2) + noun (1) heads softmaxed separately, as Motionformer's two heads: the noun column is 1
    vn = torch.tensor([[0.0, 0.0, 5.0], [math.log(3.0), 0.0, -5.0]])
    assert torch.allclose(merge_views(vn, 2, "softmax", groups=(2, 1)), torch.tensor([[0.625, 0.375, 1.0]]))


# --------------------------------------------------------------------------- protocols and options


def test_every_real_dataset_has_a_protocol_with_a_source():
    want = {"kinetics400": ("videomae-k400", (5, 3)), "ssv2": ("videomae-ssv2", (2, 3)),
            "epic-kitchens-100": ("motionformer-epic", (10, 3)), "diving48": ("aim-diving48", (1, 3)),
            "jester": ("direcformer-jester", (1, 3)), "charades": ("slowfast-charades", (10, 3))}
    for name, (protocol, views) in want.items():
        card = DATASETS.get(name).card
        assert (card.protocol, card.views) == (protocol, views)
        source = card.extra["protocol_source"]
        assert source == PROTOCOLS.get(protocol).source and "@" in source and ".py" in source
    assert DATASETS.get("synth-motion").card.protocol == "synthetic"
    assert get_protocol("videomae-k400").aggregation == "softmax" == get_protocol("videomae-ssv2").aggregation


def test_options_change_a_protocol_and_its_params():
    p = get_protocol("videomae-k400", temporal_clips=2, stride=2, aggregation="logits")
    assert (p.name, p.views, p.stride, p.aggregation) == ("videomae-k400", 6, 2, "logits")
    assert p.params() != get_protocol("videomae-k400").params() and "source" not in p.params()
    assert p.frame_indices(40, "x") == [list(range(0, 32, 2)), list(range(8, 40, 2))]


@pytest.mark.parametrize(("name", "options", "fragment"), [
    ("videomae-k400", {"temporal_clips": 1}, "at least 2 temporal clips"),
    ("videomae-ssv2", {"stride": 2}, "has no stride"),
    ("videomae-ssv2", {"temporal_clips": 5}, "exactly 2 temporal clips"),
    ("aim-diving48", {"temporal_clips": 2}, "makes 1 temporal clip"),
    ("direcformer-jester", {"spatial_crops": 2}, "spatial_crops=2"),
    ("videomae-k400", {"stride": 0}, "stride must be an integer >= 1"),
    ("videomae-k400", {"aggregation": "median"}, "aggregation must be one of logits, softmax, sigmoid-max"),
    ("videomae-k400", {"seed": 1}, "no option 'seed'"),
])
def test_options_a_protocol_cannot_use(name, options, fragment):
    with pytest.raises(TokbenchError, match=fragment):
        get_protocol(name, **options)


def test_unknown_protocol_suggests_the_close_names():
    with pytest.raises(UnknownNameError, match="Did you mean 'videomae-k400'"):
        get_protocol("videomae-k40")


# --------------------------------------------------------------------------- data, evaluate, torchrun shards


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """A Diving48 layout (2 test videos, 3 classes, 64 training clips) and a Charades one (1 test video)."""
    root = tmp_path_factory.mktemp("protocols")
    d = root / "diving48"
    write_json(d / "Diving48_vocab.json", [["a"], ["b"], ["c"]])
    # 64 training clips (one linear-probe batch), all cut from the same file
    write_json(d / "Diving48_V2_train.json", [{"vid_name": "t0", "label": i % 3, "start_frame": i % 4, "end_frame": 20}
                                              for i in range(64)])
    write_json(d / "Diving48_V2_test.json", [{"vid_name": "v0", "label": 0, "start_frame": 0, "end_frame": 20},
                                             {"vid_name": "v1", "label": 2, "start_frame": 0, "end_frame": 20}])
    for vid, col in (("t0", COL["a"]), ("v0", COL["b"]), ("v1", COL["c"])):
        write_video(d / f"rgb/{vid}.mp4", col)
    c = root / "charades"
    c.mkdir()
    (c / "Charades_v1_classes.txt").write_text("c000 Holding\nc001 Putting\n")
    hdr = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
           "actions", "length"]
    write_csv(c / "Charades_v1_train.csv", hdr, [["A1", "s", "k", 6, 7, "Yes", "s", "o", "d", "c000 0.0 1.0", 2.0]])
    write_csv(c / "Charades_v1_test.csv", hdr, [["B1", "s", "k", 6, 7, "Yes", "s", "o", "d", "c001 0.0 1.0", 2.0]])
    for vid in ("A1", "B1"):
        write_video(c / f"Charades_v1_480/{vid}.mp4", COL["d"])
    return root


def test_dataset_options_reach_the_protocol(layouts):
    ds = create_dataset("diving48", split="test", root=layouts / "diving48", **TINY)
    assert ds.protocol.name == "aim-diving48" and ds.views == 3 and ds.aggregation == "softmax"
    other = create_dataset("diving48", split="test", root=layouts / "diving48", protocol="videomae-k400", stride=2,
                           temporal_clips=2, spatial_crops=1, **TINY)
    assert (other.protocol.name, other.views, other.protocol.stride) == ("videomae-k400", 2, 2)
    train = create_dataset("diving48", split="train", root=layouts / "diving48", **TINY)
    assert train.protocol.name == "tokbench-segments" and train.views == 1  # training clips: one centred clip
    with pytest.raises(TokbenchError, match="'softmax' does not suit the multilabel task; valid: logits, sigmoid-max"):
        create_dataset("charades", split="test", root=layouts / "charades", aggregation="softmax", **TINY)


def test_charades_views_merge_by_the_max_of_the_sigmoid(layouts):
    ds = create_dataset("charades", split="test", root=layouts / "charades", temporal_clips=2, **TINY)
    assert ds.views == 6 and ds.aggregation == "sigmoid-max"
    model = create_backbone("test_tiny", num_classes=2)
    with torch.no_grad():
        want = model(ds[0]["video"]).sigmoid().amax(0, keepdim=True)
    assert torch.allclose(predict(model, build_method("none"), ds).logits, want, atol=1e-6)


class _TwoRanksInOneProcess:
    """A two-rank world whose other rank runs in this process: evaluate's distributed path
    (shard, merge views per rank, gather, sort) without starting processes."""

    distributed, is_main, rank, size = True, True, 0, 2

    def __init__(self, model, method, dataset):
        self.model, self.method, self.dataset = model, method, dataset

    def gather_or_raise(self, part, error):
        from tokbench.benchmark.distributed import Shard

        assert error is None
        return [part, predict(self.model, self.method, Shard(self.dataset, 1, 2), batch_size=1)]


def test_sharded_evaluation_merges_views_as_one_process(layouts):
    ds = create_dataset("diving48", split="test", root=layouts / "diving48", **TINY)  # softmax over 1 x 3 views
    model, method = create_backbone("test_tiny", num_classes=3), build_method("none")
    one = evaluate(model, method, ds, batch_size=1)
    two = evaluate(model, method, ds, batch_size=1, world=_TwoRanksInOneProcess(model, method, ds))
    assert one.metrics == two.metrics and two.aggregation == "softmax" and two.clips == 2


# --------------------------------------------------------------------------- CLI, records, cell ids


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_ls_datasets_verbose_shows_each_protocol_and_its_source():
    r = invoke("ls", "datasets", "-v", "--format", "json")
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["ssv2"]["protocol"] == "videomae-ssv2" and "ssv2.py" in rows["ssv2"]["protocol_source"]
    assert "kinetics.py" in rows["kinetics400"]["protocol_source"]
    table = invoke("ls", "datasets", "-v").stdout
    assert "videomae-k400" in table and "MCG-NJU/VideoMAE" in table and "uark-cviu/DirecFormer" in table
    assert "slowfast-charades" in invoke("ls", "protocols").stdout


RUN = ("run", "--backbone", "test_tiny", "--methods", "none", "--metrics", "accuracy")


@pytest.mark.parametrize(("args", "fragment"), [
    (["--eval-protocol", "videomae-k40"], "unknown evaluation protocol 'videomae-k40'. Did you mean 'videomae-k400'"),
    (["--eval-protocol", "videomae-k400", "--eval-views", "1x3"], "at least 2 temporal clips"),
    (["--eval-protocol", "videomae-ssv2", "--eval-stride", "2"], "protocol 'videomae-ssv2' has no stride"),
    (["--eval-views", "1x2"], "spatial_crops=2"),
    (["--eval-views", "0x3"], "--eval-views '0x3': give temporal clips x spatial crops"),
    (["--eval-aggregation", "mean"], "'mean' is not one of 'logits', 'softmax', 'sigmoid-max'"),
])
def test_bad_protocol_input_is_one_line_and_writes_nothing(layouts, tmp_path, args, fragment):
    r = invoke(*RUN, "--dataset", "diving48", "--data-root", layouts / "diving48", "--results", tmp_path / "res", *args)
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and fragment in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "res").exists()


def test_multilabel_softmax_is_refused_on_the_cli(layouts, tmp_path):
    r = invoke(*RUN, "--dataset", "charades", "--data-root", layouts / "charades", "--eval-aggregation", "softmax",
               "--results", tmp_path)
    assert r.exit_code == 2 and "does not suit the multilabel task" in r.stderr


def test_cell_ids_change_with_the_protocol_and_synthetic_ids_do_not(layouts):
    from tokbench.benchmark.runner import Sweep, plan

    def key(dataset, root=None, **kw):
        sweep = Sweep(backbones=("test_tiny",), methods=("none",), p_ratios=(1.0,), metrics=("accuracy",),
                      datasets=(dataset,), data_root=root, device="cpu", **kw)
        return plan(sweep)[0].key

    root = str(layouts / "diving48")
    base = key("diving48", root)
    others = {key("diving48", root, eval_protocol="tokbench-segments"), key("diving48", root, eval_views=(1, 1)),
              key("diving48", root, eval_aggregation="logits"),
              key("diving48", root, eval_protocol="videomae-k400", eval_stride=2)}
    assert base not in others and len(others) == 4
    assert key("diving48", root, eval_protocol="aim-diving48", eval_views=(1, 3)) == base  # the defaults spelt out
    with pytest.raises(TokbenchError, match="synthetic and keeps its own protocol"):
        key("synth-motion", eval_views=(2, 3))


@pytest.mark.filterwarnings("ignore::tokbench.data.real.SkippedVideoWarning")
def test_linear_probe_evaluates_with_the_protocols_merging(layouts, tmp_path):
    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": create_backbone("test_tiny", num_classes=3).state_dict()}, ckpt)
    r = invoke(*RUN, "--dataset", "diving48", "--data-root", layouts / "diving48", "--checkpoint", ckpt,
               "--protocol", "lp", "--results", tmp_path / "res")
    assert r.exit_code == 0, r.stderr
    record = json.loads(next((tmp_path / "res").rglob("*.jsonl")).read_text().splitlines()[0])
    assert record["status"] == "ok", record["error"]
    assert (record["protocol"], record["eval_protocol"], record["view_averaging"], record["views"]) == (
        "lp", "aim-diving48", "softmax", 3)
    assert record["eval_protocol_params"] == get_protocol("aim-diving48", frames=4, size=32).params()
