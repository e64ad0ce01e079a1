"""The synthetic suite: determinism, disjoint splits, the item contract, caching, and the
properties that make it discriminate (static vs moving backgrounds, small informative
regions)."""

import hashlib

import numpy as np
import pytest
import torch

from tokbench.data import DATASETS, create_dataset
from tokbench.data import synthetic as synth
from tokbench.data.render import draw, hsv, linear_track, texture
from tokbench.data.views import normalize
from tokbench.errors import TokbenchError

NAMES = sorted(synth.SYNTHETIC)


def test_six_datasets_mirroring_the_lookwhen_six():
    mirrors = {synth.SYNTHETIC[n].card.mirrors for n in NAMES}
    assert NAMES == ["synth-appearance", "synth-egocentric", "synth-gesture", "synth-motion", "synth-multilabel",
                     "synth-sequence"]
    assert mirrors == {"Kinetics-400", "Something-Something v2", "EPIC-KITCHENS-100", "Diving48", "Jester", "Charades"}
    for n in NAMES:
        card = DATASETS.get(n).card
        assert card.decides and card.stresses and len(card.extra["classes"]) == card.num_classes


@pytest.mark.parametrize("name", NAMES)
def test_clips_are_deterministic_and_seeded(name):
    a, la = synth.generate_clip(name, split="val", index=3)
    b, lb = synth.generate_clip(name, split="val", index=3)
    c, _ = synth.generate_clip(name, split="val", index=3, seed=1)
    assert a.dtype == np.uint8 and a.shape == (16, 48, 48, 3)
    assert np.array_equal(a, b) and la == lb and not np.array_equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_disjoint(name):
    def hashes(split):
        videos, _ = synth.generate_split(name, split, frames=16, size=48, seed=0, num_clips=40)
        return {hashlib.sha1(v.tobytes()).hexdigest() for v in videos}

    train, val, test = hashes("train"), hashes("val"), hashes("test")
    assert len(train) == len(val) == len(test) == 40
    assert not (train & val) and not (train & test) and not (val & test)


@pytest.mark.parametrize("name", NAMES)
def test_labels_cover_every_class(name):
    card = synth.SYNTHETIC[name].card
    _, labels = synth.generate_split(name, "train", frames=8, size=32, seed=0, num_clips=300)
    if card.task == "multilabel":
        assert labels.shape == (300, card.num_classes) and labels.sum(1).min() >= 1 and labels.sum(1).max() <= 3
        assert labels.any(0).all()
    elif card.task == "verb_noun":
        assert set(labels[:, 0]) == set(range(card.num_verbs)) and set(labels[:, 1]) == set(range(card.num_nouns))
    else:
        counts = np.bincount(labels, minlength=card.num_classes)
        assert counts.min() > 300 / card.num_classes / 3  # roughly balanced


def test_items_follow_the_dataset_contract(tmp_path):
    ds = create_dataset("synth-egocentric", split="val", num_clips=5, frames=8, size=32)
    item = ds[2]
    assert item["video"].shape == (3, 8, 32, 32) and item["video"].dtype == torch.float32
    assert item["id"] == "val-2" and item["index"] == 2
    assert item["label"] == item["verb"] * 6 + item["noun"]
    raw, (verb, noun) = synth.generate_clip("synth-egocentric", split="val", index=2, frames=8, size=32)
    assert (item["verb"], item["noun"]) == (verb, noun)
    expected = normalize(torch.from_numpy(raw).permute(3, 0, 1, 2).float() / 255)
    torch.testing.assert_close(item["video"], expected)
    multi = create_dataset("synth-multilabel", split="val", num_clips=3)[0]
    assert multi["label"].dtype == torch.float32 and multi["label"].shape == (12,)
    assert isinstance(create_dataset("synth-motion", split="train", num_clips=2)[1]["label"], int)
    assert len(ds) == 5
    with pytest.raises(IndexError):
        ds[5]


def test_bad_options_are_clear_errors():
    with pytest.raises(TokbenchError, match="has no split 'dev'"):
        create_dataset("synth-motion", split="dev")
    with pytest.raises(TokbenchError, match="size must be an integer >= 8"):
        create_dataset("synth-motion", split="val", size=4)
    with pytest.raises(TypeError):
        create_dataset("synth-motion", split="val", colour="red")


def test_split_is_cached_and_reused(monkeypatch):
    first = create_dataset("synth-gesture", split="val", num_clips=6)
    monkeypatch.setattr(synth, "generate_split", lambda *a, **k: (_ for _ in ()).throw(AssertionError("regenerated")))
    again = create_dataset("synth-gesture", split="val", num_clips=6)
    assert isinstance(again.videos, np.memmap)
    assert np.array_equal(np.asarray(first.videos), np.asarray(again.videos))
    with pytest.raises(AssertionError, match="regenerated"):
        create_dataset("synth-gesture", split="val", num_clips=7)  # other parameters: another cache entry


def test_damaged_cache_is_regenerated():
    ds = create_dataset("synth-motion", split="test", num_clips=4)
    folder = next(synth._cache_dir().glob("synth-motion-test-*"))
    (folder / "videos.npy").write_bytes(b"garbage")
    again = create_dataset("synth-motion", split="test", num_clips=4)
    assert np.array_equal(np.asarray(ds.videos), np.asarray(again.videos))


def _changed_fraction(name: str, n: int = 24) -> float:
    """Fraction of 8x8 patches whose mean |difference| from the previous frame is above
    sensor noise (the test RLT applies to tubelets: a static patch differs by noise only;
    noise alone gives a mean |difference| of about 6 grey levels)."""
    videos, _ = synth.generate_split(name, "val", frames=16, size=48, seed=0, num_clips=n)
    diff = np.abs(np.diff(videos.astype(np.int16), axis=1)).mean(-1)  # (n, T-1, H, W)
    patches = diff.reshape(n, 15, 6, 8, 6, 8).mean(axis=(3, 5))  # (n, T-1, 6, 6)
    return float((patches > 12).mean())


@pytest.mark.parametrize("name", [n for n in NAMES if n != "synth-egocentric"])
def test_static_backgrounds_where_the_real_dataset_has_them(name):
    # Only the objects' patches change: a small minority.
    assert _changed_fraction(name) < 0.15


def test_egocentric_background_moves():
    # The camera pans and shakes: most patches change every frame, so nothing is prunable.
    assert _changed_fraction("synth-egocentric") > 0.6


@pytest.mark.parametrize("name", ["synth-appearance", "synth-gesture", "synth-motion"])
def test_the_informative_object_covers_a_minority_of_tokens(name):
    """Tubelet tokens (2x8x8) that differ from the clip's background: the label object and
    the distractors, not the frame."""
    rng = np.random.default_rng(0)
    videos, _ = synth.generate_split(name, "val", frames=16, size=48, seed=0, num_clips=12)
    fractions = []
    for v in videos.astype(np.int16):
        background = np.median(v, axis=0)  # objects move or are small: the median is the scene
        differs = np.abs(v - background).max(-1) > 60  # (T, H, W)
        tokens = differs.reshape(8, 2, 6, 8, 6, 8).any(axis=(1, 3, 5))  # (8, 6, 6) tubelets
        fractions.append(tokens.mean())
    assert np.mean(fractions) < 0.35, fractions
    assert rng is not None


# -- renderer ---------------------------------------------------------------------------

def test_disk_area_and_track_interpolation():
    canvas = np.zeros((3, 40, 40, 3), np.float32)
    track = linear_track(3, (10, 10), (30, 20), 5.0)
    assert track.cy.tolist() == [10, 20, 30] and track.cx.tolist() == [10, 15, 20]
    draw(canvas, "disk", track, hsv(0, 0, 1))  # white
    area = canvas[..., 0].sum((1, 2))
    assert np.allclose(area, np.pi * 25, rtol=0.05)
    assert canvas[1, 20, 15, 0] == pytest.approx(1.0) and canvas[1, 20, 25, 0] == 0


def test_track_holds_still_outside_its_frames_and_visibility():
    track = linear_track(6, (0, 0), (10, 0), 2.0, frames=(2, 4))
    assert track.cy.tolist() == [0, 0, 0, 5, 10, 10]
    canvas = np.zeros((6, 16, 16, 3), np.float32)
    track.cy[:] = 8
    track.cx[:] = 8
    track.visible[3:] = False
    draw(canvas, "square", track, np.ones(3, np.float32))
    assert canvas[:3].sum() > 0 and canvas[3:].sum() == 0


def test_texture_is_smooth_and_in_range():
    img = texture(np.random.default_rng(0), 48, 48)
    assert img.shape == (48, 48, 3) and img.min() >= 0 and img.max() <= 1
    assert np.abs(np.diff(img, axis=0)).max() < 0.1  # no hard edges


def test_hsv_primaries():
    assert hsv(0, 1, 1).tolist() == [1, 0, 0] and hsv(1 / 3, 1, 1).tolist() == pytest.approx([0, 1, 0])


def test_a_clip_does_not_depend_on_the_split_size():
    """The runner generates only the first n training clips for calibration; they must be the
    split's first n clips."""
    small = create_dataset("synth-motion", split="train", num_clips=3, frames=8, size=32, cache=False)
    large = create_dataset("synth-motion", split="train", num_clips=12, frames=8, size=32, cache=False)
    for i in range(3):
        assert torch.equal(small[i]["video"], large[i]["video"]) and small[i]["label"] == large[i]["label"]
