"""Real-dataset loaders on tiny fakes in each published layout (each card's ``files``).

Every fake clip's frame ``n`` is a solid colour ``(R, 10 n + 5, B)``: R and B identify the
clip (normalisation checks), G the frame number (temporal sampling checks).
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings

import av
import pytest
import torch
from fakedata import COL, H, W, corrupt, write_csv, write_frames, write_json, write_video  # noqa: F401

import tokbench.data.real as real
from tokbench.data import DATASETS, DataError, create_dataset
from tokbench.data.base import IMAGENET_MEAN, IMAGENET_STD
from tokbench.data.batching import collate_clips
from tokbench.data.real import SkippedVideoWarning, check_readable
from tokbench.data.video_io import VideoReadError, count_frames, read_frame_folder, read_video
from tokbench.data.views import temporal_indices

SMALL = {"frames": 4, "size": 32}


# ----------------------------------------------------------------------------- checks


def frame_numbers(video):
    """(C, T, S, S) normalised -> the frame number each of the T frames shows."""
    g = video[1].mean(dim=(1, 2)) * IMAGENET_STD[1] + IMAGENET_MEAN[1]
    return [round((float(v) * 255 - 5) / 10) for v in g]


def assert_colour(video, colour, tol=4 / 255):
    for c, v in ((0, colour[0]), (2, colour[1])):
        want = (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert abs(float(video[c].mean()) - want) < tol / IMAGENET_STD[c], (c, float(video[c].mean()), want)
        assert float(video[c].std()) < 0.05


def expected(total, frames=4, clips=1, start=0):
    return [[start + i for i in clip] for clip in temporal_indices(total, frames, clips)]


def make(name, root, split, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)
        return create_dataset(name, split=split, root=root, **{**SMALL, **kw})


# ----------------------------------------------------------------------------- fixtures



@pytest.fixture(scope="module")
def k400(tmp_path_factory):
    """cvdfoundation layout: annotations/{train,val,test}.csv; train/<label>/ and flat val/."""
    root = tmp_path_factory.mktemp("k400")
    hdr = ["label", "youtube_id", "time_start", "time_end", "split", "is_cc"]
    write_csv(root / "annotations/train.csv", hdr, [
        ["zumba", "zzz", 10, 20, "train", 0], ["abseiling", "aaa", 0, 10, "train", 0],
        ["bowling", "bbb", 3, 13, "train", 0],
    ])
    write_csv(root / "annotations/val.csv", hdr, [
        ["bowling", "vb1", 5, 15, "val", 0], ["zumba", "vz1", 1, 11, "val", 0],
        ["abseiling", "gone", 0, 10, "val", 0],  # no video file
    ])
    write_csv(root / "annotations/test.csv", ["youtube_id", "time_start", "time_end", "split"],
              [["t1", 0, 10, "test"]])
    write_video(root / "train/zumba/zzz_000010_000020.mp4", COL["a"])
    write_video(root / "train/abseiling/aaa_000000_000010.mp4", COL["b"])
    write_video(root / "train/bowling/bbb_000003_000013.mp4", COL["c"])
    write_video(root / "val/vb1_000005_000015.mp4", COL["d"], n=24)
    write_video(root / "val/vz1.mp4", COL["e"])  # <youtube_id>.mp4 also accepted
    write_video(root / "test/t1_000000_000010.mp4", COL["a"])
    return root


@pytest.fixture(scope="module")
def ssv2(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssv2")
    write_json(root / "something-something-v2-labels.json", {
        "Pushing something from left to right": "1", "Holding something": "0",
        "Putting something on something": "2",
    })
    write_json(root / "something-something-v2-train.json", [
        {"id": "11", "label": "holding a cup", "template": "Holding [something]", "placeholders": ["a cup"]},
        {"id": "12", "label": "putting a pen on a book", "template": "Putting [something] on [something]",
         "placeholders": ["a pen", "a book"]},
    ])
    write_json(root / "something-something-v2-validation.json", [
        {"id": "21", "label": "pushing a box from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a box"]},
    ])
    for vid, col in (("11", COL["a"]), ("12", COL["b"]), ("21", COL["c"])):
        write_video(root / f"20bn-something-something-v2/{vid}.webm", col, codec="libvpx-vp9")
    return root


EPIC_HDR = ["narration_id", "participant_id", "video_id", "narration_timestamp", "start_timestamp",
            "stop_timestamp", "start_frame", "stop_frame", "narration", "verb", "verb_class", "noun",
            "noun_class", "all_nouns", "all_noun_classes"]


def _epic_row(nid, p, v, start, stop, verb, noun):
    return [nid, p, v, "00:00:01.00", "00:00:00.00", "00:00:02.00", start, stop, "x", "v", verb, "n", noun,
            "['n']", f"[{noun}]"]


@pytest.fixture(scope="module")
def epic(tmp_path_factory):
    """P01_01 as a video, P02_01 only as rgb_frames (1-based JPEGs)."""
    root = tmp_path_factory.mktemp("epic")
    write_csv(root / "EPIC_100_verb_classes.csv", ["id", "key", "instances", "category"],
              [[0, "take", "['take']", "x"], [1, "put", "['put']", "x"], [2, "wash", "['wash']", "x"]])
    write_csv(root / "EPIC_100_noun_classes.csv", ["id", "key", "instances", "category"],
              [[i, k, f"['{k}']", "x"] for i, k in enumerate(["tap", "plate", "cup", "knife"])])
    write_csv(root / "EPIC_100_train.csv", EPIC_HDR, [
        _epic_row("P01_01_0", "P01", "P01_01", 5, 20, 2, 3),
        _epic_row("P02_01_0", "P02", "P02_01", 1, 12, 1, 0),
    ])
    write_csv(root / "EPIC_100_validation.csv", EPIC_HDR, [_epic_row("P01_01_1", "P01", "P01_01", 9, 24, 0, 2)])
    write_video(root / "P01/videos/P01_01.MP4", COL["a"], n=24)
    write_frames(root / "P02/rgb_frames/P02_01", COL["b"], 12, name="frame_{:010d}.jpg")
    return root


@pytest.fixture(scope="module")
def diving48(tmp_path_factory):
    root = tmp_path_factory.mktemp("diving48")
    write_json(root / "Diving48_vocab.json", [["Back", "15som", "NoTwis", "PIKE"], ["Back", "15som", "05Twis", "FREE"],
                                              ["Forward", "25som", "NoTwis", "TUCK"]])
    write_json(root / "Diving48_V2_train.json", [
        {"vid_name": "d_00001", "label": 2, "start_frame": 4, "end_frame": 20},
        {"vid_name": "d_00002", "label": 0, "start_frame": 0, "end_frame": 30},  # past the end: cut
    ])
    write_json(root / "Diving48_V2_test.json", [{"vid_name": "d_00003", "label": 1, "start_frame": 0,
                                                 "end_frame": 24}])
    write_video(root / "rgb/d_00001.mp4", COL["a"], n=24)
    write_video(root / "rgb/d_00002.mp4", COL["b"], n=20)
    write_video(root / "rgb/d_00003.mp4", COL["c"], n=24)
    return root


@pytest.fixture(scope="module")
def jester(tmp_path_factory):
    root = tmp_path_factory.mktemp("jester")
    (root / "jester-v1-labels.csv").write_text("Doing other things\nDrumming Fingers\nSwiping Left\n")
    write_csv(root / "jester-v1-train.csv", None, [[101, "Swiping Left"], [102, "Doing other things"]], ";")
    write_csv(root / "jester-v1-validation.csv", None, [[201, "Drumming Fingers"]], ";")
    write_frames(root / "20bn-jester-v1/101", COL["a"], 12)
    write_frames(root / "20bn-jester-v1/102", COL["b"], 10)
    write_frames(root / "20bn-jester-v1/201", COL["c"], 12)
    return root


@pytest.fixture(scope="module")
def charades(tmp_path_factory):
    root = tmp_path_factory.mktemp("charades")
    (root / "Charades_v1_classes.txt").write_text(
        "c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Taking some clothes from somewhere\n")
    hdr = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
           "actions", "length"]
    write_csv(root / "Charades_v1_train.csv", hdr, [
        ["46GP8", "HR43", "Kitchen", 6, 7, "Yes", "s", "o", "d", "c002 11.90 21.20;c000 0.00 12.60", 24.8],
        ["N11GT", "HR44", "Bedroom", 6, 7, "Yes", "s", "o", "d", "", 30.0],
    ])
    write_csv(root / "Charades_v1_test.csv", hdr, [["ZZXQF", "HR45", "Hall", 6, 7, "Yes", "s", "o", "d",
                                                    "c001 0.00 5.00", 10.0]])
    for vid, col in (("46GP8", COL["a"]), ("N11GT", COL["b"]), ("ZZXQF", COL["c"])):
        write_video(root / f"Charades_v1_480/{vid}.mp4", col)
    return root


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """Diving48 layout: train = one good, one corrupt clip; test = only corrupt clips."""
    root = tmp_path_factory.mktemp("broken")
    write_json(root / "Diving48_vocab.json", [["a"], ["b"]])
    write_json(root / "Diving48_V2_train.json", [{"vid_name": "ok", "label": 0, "start_frame": 0, "end_frame": 20},
                                                 {"vid_name": "bad", "label": 1, "start_frame": 0, "end_frame": 20}])
    write_json(root / "Diving48_V2_test.json", [{"vid_name": "bad", "label": 1, "start_frame": 0, "end_frame": 20},
                                                {"vid_name": "bad2", "label": 0, "start_frame": 0, "end_frame": 9}])
    write_video(root / "rgb/ok.mp4", COL["a"])
    corrupt(root / "rgb/bad.mp4")
    corrupt(root / "rgb/bad2.mp4")
    return root


# ----------------------------------------------------------------------------- video_io


def test_read_video_picks_frames_and_counts_by_decoding(diving48, ssv2):
    path = diving48 / "rgb/d_00001.mp4"
    assert count_frames(path) == 24 and count_frames(path, start_frame=4, end_frame=20) == 16
    x = read_video(path, [23, 0, 7, 7])
    assert x.dtype == torch.uint8 and x.shape == (4, H, W, 3)
    assert [round((float(f[..., 1].float().mean()) - 5) / 10) for f in x] == [23, 0, 7, 7]
    seg = read_video(path, lambda n: [0, n - 1], start_frame=4, end_frame=20)
    assert [round((float(f[..., 1].float().mean()) - 5) / 10) for f in seg] == [4, 19]
    webm = ssv2 / "20bn-something-something-v2/11.webm"
    with av.open(str(webm)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
    assert count_frames(webm) == 20


@pytest.mark.skipif("libx264" not in av.codecs_available, reason="PyAV built without libx264")
def test_read_video_seeking_matches_sequential(tmp_path, monkeypatch):
    path = tmp_path / "gop4.mp4"
    write_video(path, COL["a"], n=24, codec="libx264")
    with av.open(str(path)) as c:
        assert [f.key_frame for f in c.decode(video=0)][:5] == [True, False, False, False, True]
    want = list(range(9, 22))
    seq = read_video(path, lambda n: list(range(n)), start_frame=9, end_frame=22)
    monkeypatch.setattr("tokbench.data.video_io.SEEK_MIN_SECONDS", 0.0)  # seek to frame 8, skip to 9
    seek = read_video(path, lambda n: list(range(n)), start_frame=9, end_frame=22)
    monkeypatch.setattr("tokbench.data.video_io.KEEP_BYTES", 0)  # two-pass path as well
    seek2 = read_video(path, lambda n: [0, n - 1, 5], start_frame=9, end_frame=22)
    assert [round((float(f[..., 1].float().mean()) - 5) / 10) for f in seq] == want
    assert torch.equal(seq, seek) and torch.equal(seek2, seq[[0, 12, 5]])


def test_read_errors(tmp_path, diving48, jester):
    with pytest.raises(VideoReadError, match="not found"):
        read_video(tmp_path / "none.mp4", [0])
    corrupt(tmp_path / "bad.mp4")
    with pytest.raises(VideoReadError) as e:
        read_video(tmp_path / "bad.mp4", [0])
    assert not isinstance(e.value, ValueError) and e.value.reason
    with pytest.raises(VideoReadError, match="no frames"):
        read_video(diving48 / "rgb/d_00001.mp4", lambda n: [0], start_frame=100)
    with pytest.raises(VideoReadError, match="segment has 24 frames"):
        read_video(diving48 / "rgb/d_00001.mp4", [24])
    frames = read_frame_folder(jester / "20bn-jester-v1/101", lambda n: [n - 1], pattern="{:05d}.jpg")
    assert frames.shape == (1, H, W, 3) and round((float(frames[0, ..., 1].float().mean()) - 5) / 10) == 11
    with pytest.raises(VideoReadError, match="missing frame file 00013.jpg"):
        read_frame_folder(jester / "20bn-jester-v1/101", [12], pattern="{:05d}.jpg", end_frame=20)


# ----------------------------------------------------------------------------- datasets


def test_all_six_registered_with_cards():
    names = ["kinetics400", "ssv2", "epic-kitchens-100", "diving48", "jester", "charades"]
    for name in names:
        card = DATASETS.get(name).card
        assert card.kind == "real" and card.files and card.notes and card.eval_split in card.splits
    assert DATASETS.get("kinetics400").card.views == (5, 3) and DATASETS.get("ssv2").card.views == (2, 3)
    epic = DATASETS.get("epic-kitchens-100").card
    assert (epic.task, epic.num_verbs, epic.num_nouns, epic.num_classes) == ("verb_noun", 97, 300, 29100)
    assert DATASETS.get("charades").card.metric == "mAP"


def test_kinetics400(k400):
    with pytest.warns(SkippedVideoWarning, match="1 of 3 annotated videos not found"):
        val = create_dataset("kinetics400", split="val", root=k400, **SMALL)
    train = make("kinetics400", k400, "train")
    assert train.classes == ["abseiling", "bowling", "zumba"] and train.num_classes == 3
    assert [(s.id, s.label) for s in train.samples] == [
        ("zzz_000010_000020", 2), ("aaa_000000_000010", 0), ("bbb_000003_000013", 1)]
    assert len(train) == 3 and len(val) == 2 and val.missing == ["gone_000000_000010"]
    assert [s.label for s in val.samples] == [1, 2]
    assert train.spec.temporal_clips == 1 and val.spec.views == 15  # 5x3 on val by default
    item = val[0]
    assert set(item) == {"video", "label", "id", "index"} and item["label"] == 1
    assert item["video"].shape == (15, 3, 4, 32, 32)
    # videomae-k400 on 24 frames, 4 per clip: every 4th frame 0, 4, ..., 20 (6); window c starts at
    # int(c * (6 - 4) / 4) = 0, 0, 1, 1, 2. View 3 = clip 1 crop 0, view 14 = clip 4 crop 2.
    assert [frame_numbers(item["video"][v]) for v in (0, 3, 14)] == [[0, 4, 8, 12], [0, 4, 8, 12], [8, 12, 16, 20]]
    assert_colour(item["video"][7], COL["d"])
    one = make("kinetics400", k400, "val", protocol="tokbench-segments", temporal_clips=1, spatial_crops=1)
    assert one[1]["video"].shape == (3, 4, 32, 32) and frame_numbers(one[1]["video"]) == expected(20)[0]
    with pytest.raises(DataError, match="has no labels"):
        make("kinetics400", k400, "test")
    assert len(make("kinetics400", k400, "train", limit=2)) == 2


def test_ssv2(ssv2):
    train, val = make("ssv2", ssv2, "train"), make("ssv2", ssv2, "val")
    assert train.classes == ["Holding something", "Pushing something from left to right",
                             "Putting something on something"]
    assert [(s.id, s.label) for s in train.samples] == [("11", 0), ("12", 2)]
    assert len(val) == 1 and val[0]["label"] == 1 and val[0]["id"] == "21"
    v = val[0]["video"]
    assert v.shape == (6, 3, 4, 32, 32)  # 2x3
    # videomae-ssv2, 20 frames, 4 segments: tick 5, starts 0 5 10 15 and centres 2 7 12 17, sorted and
    # dealt alternately: both clips span the whole video. v[0] = clip 0 crop 0, v[5] = clip 1 crop 2.
    assert frame_numbers(v[0]) == [0, 5, 10, 15] and frame_numbers(v[5]) == [2, 7, 12, 17]
    assert_colour(v[0], COL["c"])
    with pytest.raises(DataError, match="ssv2"):
        create_dataset("ssv2", split="val")


def test_epic_kitchens(epic):
    train = make("epic-kitchens-100", epic, "train")
    assert (train.num_verbs, train.num_nouns, train.num_classes) == (3, 4, 12)
    assert train.verbs == ["take", "put", "wash"] and train.nouns[3] == "knife"
    video_item, frames_item = train[0], train[1]
    assert set(video_item) == {"video", "label", "id", "index", "verb", "noun"}
    assert (video_item["verb"], video_item["noun"], video_item["label"]) == (2, 3, 2 * 4 + 3)
    assert (frames_item["verb"], frames_item["noun"], frames_item["label"]) == (1, 0, 4)
    assert train.samples[1].frames_pattern is not None and train.samples[0].frames_pattern is None
    # start_frame 5..stop_frame 20 (1-based, inclusive) = 0-based frames 4..19
    assert video_item["video"].shape == (3, 4, 32, 32)
    assert frame_numbers(video_item["video"]) == expected(16, start=4)[0]
    assert frame_numbers(frames_item["video"]) == expected(12)[0]
    assert_colour(video_item["video"], COL["a"])
    assert_colour(frames_item["video"], COL["b"], tol=6 / 255)
    val = make("epic-kitchens-100", epic, "val")
    item = val[0]
    assert item["video"].shape == (30, 3, 4, 32, 32) and item["label"] == 0 * 4 + 2  # motionformer-epic 10x3
    # Segment 9..24 = 16 frames from frame 8; P01_01 counts as 60 fps, so the window is 4 * 4 * 60 / 30 = 32
    # frames, longer than the segment: every clip starts at 0, linspace(1, 32, 4) = 1, 11.3, 21.7, 32
    # clamped to 15 -> offsets 1, 11, 15, 15.
    assert frame_numbers(item["video"][1]) == [9, 19, 23, 23] == frame_numbers(item["video"][29])
    batch = collate_clips([train[0], train[1]])
    assert batch["verb"].tolist() == [2, 1] and batch["noun"].tolist() == [3, 0] and batch["label"].tolist() == [11, 4]


def test_diving48(diving48):
    train, test = make("diving48", diving48, "train"), make("diving48", diving48, "test")
    assert len(train) == 2 and len(test) == 1 and train.classes[2] == "Forward 25som NoTwis TUCK"
    assert [s.label for s in train.samples] == [2, 0] and test[0]["label"] == 1
    assert frame_numbers(train[0]["video"]) == expected(16, start=4)[0]  # segment [4, 20)
    assert frame_numbers(train[1]["video"]) == expected(20)[0]  # end_frame past the video: 20 frames
    # aim-diving48 (1x3): 24 frames, seg 23 / 4 = 5.75; (round(5.75 i) + round(5.75 (i + 1))) // 2
    # = (0 + 6) // 2, (6 + 12) // 2, (12 + 17) // 2, (17 + 23) // 2 (11.5 rounds to even 12).
    assert test[0]["video"].shape == (3, 3, 4, 32, 32) and frame_numbers(test[0]["video"][2]) == [3, 9, 14, 20]


def test_jester(jester):
    train, val = make("jester", jester, "train"), make("jester", jester, "val")
    assert train.classes == ["Doing other things", "Drumming Fingers", "Swiping Left"]
    assert [(s.id, s.label) for s in train.samples] == [("101", 2), ("102", 0)] and val[0]["label"] == 1
    assert val[0]["video"].shape == (3, 3, 4, 32, 32)  # direcformer-jester: 1x3
    # 12 frames, seg 11 / 4 = 2.75: (0 + 3) // 2, (3 + 6) // 2, (6 + 8) // 2, (8 + 11) // 2 (5.5 -> 6)
    assert frame_numbers(val[0]["video"][0]) == [1, 4, 7, 9]
    assert frame_numbers(train[1]["video"]) == expected(10)[0]
    assert_colour(val[0]["video"][1], COL["c"], tol=6 / 255)


def test_charades(charades):
    train, test = make("charades", charades, "train"), make("charades", charades, "test")
    assert train.num_classes == 3 and train.classes[0] == "Holding some clothes"
    a, b = train[0], train[1]
    assert a["label"].dtype == torch.float32 and a["label"].tolist() == [1.0, 0.0, 1.0]
    assert b["label"].tolist() == [0.0, 0.0, 0.0]  # empty actions
    video = test[0]["video"]
    assert test[0]["label"].tolist() == [0.0, 1.0, 0.0] and video.shape == (30, 3, 4, 32, 32)  # 10x3
    # slowfast-charades: 20 frames, window (4 - 1) * 4 + 1 = 13, gap 7 / 9; clip 3 starts at round(2.33) = 2,
    # clip 9 at round(7.0) = 7.
    assert frame_numbers(video[3 * 3 + 1]) == [2, 6, 10, 14] and frame_numbers(video[27]) == [7, 11, 15, 19]
    assert collate_clips([a, b])["label"].shape == (2, 3)


def test_corrupt_videos_are_skipped_and_counted(broken):
    train = make("diving48", broken, "train")
    assert "error" not in train[0]
    with pytest.warns(SkippedVideoWarning, match="skipped video bad"):
        bad = train[1]
    assert set(bad) == {"id", "index", "error"} and bad["id"] == "bad" and bad["index"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedVideoWarning)
        assert "error" in train[1]  # warned once per video
    batch = collate_clips([train[0], bad])
    assert batch["skipped"] == ["bad"] and batch["id"] == ["ok"] and batch["video"].shape == (1, 3, 4, 32, 32)
    assert batch["index"].tolist() == [0] and batch["label"].tolist() == [0]
    assert collate_clips([bad])["video"] is None
    check_readable(train)
    loader = torch.utils.data.DataLoader(train, batch_size=2, num_workers=1, collate_fn=collate_clips)
    (got,) = list(loader)
    assert got["skipped"] == ["bad"] and got["id"] == ["ok"]
    test = make("diving48", broken, "test")
    with pytest.raises(DataError, match=r"every video of diving48/test failed to decode \(first: bad: "):
        check_readable(test)


def test_missing_root_and_annotation_files(tmp_path, k400, jester):
    with pytest.raises(DataError, match="data folder .*nowhere does not exist"):
        create_dataset("jester", split="train", root=tmp_path / "nowhere")
    copy = tmp_path / "jester"
    shutil.copytree(jester, copy)
    os.remove(copy / "jester-v1-labels.csv")
    with pytest.raises(DataError, match="jester: annotation file .*jester-v1-labels.csv not found"):
        create_dataset("jester", split="train", root=copy)
    shutil.copy(jester / "jester-v1-labels.csv", copy)
    os.remove(copy / "jester-v1-validation.csv")
    with pytest.raises(DataError, match="jester-v1-validation.csv not found"):
        create_dataset("jester", split="val", root=copy)
    ann = tmp_path / "k400"
    (ann / "annotations").mkdir(parents=True)
    shutil.copy(k400 / "annotations/val.csv", ann / "annotations/val.csv")
    with pytest.raises(DataError, match="kinetics400: annotation file .*train.csv not found"):
        create_dataset("kinetics400", split="val", root=ann)
    empty = tmp_path / "jester_empty"
    empty.mkdir()
    shutil.copy(jester / "jester-v1-labels.csv", empty)
    write_csv(empty / "jester-v1-validation.csv", None, [[999, "Swiping Left"]], ";")
    with pytest.raises(DataError, match="none of the 1 annotated videos was found"):
        create_dataset("jester", split="val", root=empty)


def test_options_are_checked(jester):
    from tokbench.errors import TokbenchError

    with pytest.raises(TokbenchError, match="no option 'seed'"):
        create_dataset("jester", split="val", root=jester, seed=1)
    with pytest.raises(TokbenchError, match="spatial_crops"):
        create_dataset("jester", split="val", root=jester, spatial_crops=2)
    with pytest.raises(TokbenchError, match="no split 'test'"):
        create_dataset("jester", split="test", root=jester)
    assert real.CARDS["jester"] is DATASETS.get("jester").card


def test_missing_pyav_is_one_clear_error(charades, jester, monkeypatch):
    from tokbench.errors import TokbenchError

    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    with pytest.raises(TokbenchError, match="needs PyAV: pip install av"):
        create_dataset("charades", split="test", root=charades)
    assert make("jester", jester, "val")[0]["video"].shape == (3, 3, 4, 32, 32)  # JPEG frames need no PyAV
