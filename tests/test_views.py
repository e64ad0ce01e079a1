"""tokbench.data.views: frame indices, crops, resize, normalisation, ViewSpec checks."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from tokbench.data.base import IMAGENET_MEAN, IMAGENET_STD
from tokbench.data.views import ViewSpec, _resize_short_side, normalize, spatial_crops, temporal_indices, to_views
from tokbench.errors import TokbenchError

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)

# --------------------------------------------------------------------------- temporal_indices


def test_temporal_indices_doctest_cases():
    assert temporal_indices(8, 4) == [[1, 3, 5, 7]]
    assert temporal_indices(8, 2, clips=2) == [[1, 3], [5, 7]]


def test_temporal_indices_fewer_frames_than_requested_repeat():
    # 3 frames, 8 wanted: step 3/8, centres 0.19 0.56 0.94 1.31 1.69 2.06 2.44 2.81
    assert temporal_indices(3, 8) == [[0, 0, 0, 1, 1, 2, 2, 2]]
    assert temporal_indices(1, 16) == [[0] * 16]
    assert temporal_indices(2, 3, clips=2) == [[0, 0, 0], [1, 1, 1]]


def test_temporal_indices_two_clips_disjoint_and_ordered():
    a, b = temporal_indices(32, 8, clips=2)
    assert a == [1, 3, 5, 7, 9, 11, 13, 15]
    assert b == [17, 19, 21, 23, 25, 27, 29, 31]
    assert max(a) < 16 <= min(b)


@pytest.mark.parametrize("clips", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("num_frames", [1, 2, 4, 7, 8, 16, 32])
def test_temporal_indices_in_range_and_ordered(num_frames, clips):
    for total in [*range(1, 70), 99, 100, 101, 250, 301, 1000, 4321]:
        out = temporal_indices(total, num_frames, clips)
        assert len(out) == clips and all(len(c) == num_frames for c in out)
        flat = [i for c in out for i in c]
        assert min(flat) >= 0 and max(flat) <= total - 1, (total, num_frames, clips)
        assert flat == sorted(flat), (total, num_frames, clips)  # clip-major, never going back
        for c, idx in enumerate(out):
            # clip c draws only from its own segment [total*c/clips, total*(c+1)/clips)
            lo, hi = Fraction(total * c, clips), Fraction(total * (c + 1), clips)
            assert all(int(lo) <= i < hi for i in idx), (total, num_frames, clips, c, idx)
        if total >= num_frames * clips:  # enough frames: all distinct, clips disjoint
            assert len(set(flat)) == len(flat), (total, num_frames, clips)


def test_temporal_indices_no_frames_is_an_error():
    with pytest.raises(TokbenchError):
        temporal_indices(0, 8)


def _exact_indices(total: int, num_frames: int, clips: int) -> list[list[int]]:
    """The documented rule in exact rational arithmetic: floor of the centre of each of
    the ``num_frames`` equal parts of each of the ``clips`` equal segments."""
    step = Fraction(total, clips * num_frames)
    return [
        [min(total - 1, int(Fraction(total * c, clips) + step * Fraction(2 * i + 1, 2))) for i in range(num_frames)]
        for c in range(clips)
    ]


@pytest.mark.parametrize(("total", "num_frames", "clips"), [(44, 6, 3), (6, 3, 5), (12, 3, 5), (52, 10, 3)])
def test_temporal_indices_exact_segment_centres(total, num_frames, clips):
    # (44, 6, 3): step 44/18 = 22/9; clip 0 frame 4 centre 22/9 * 4.5 = 11 -> index 11 (floats gave 10)
    # (6, 3, 5):  step 6/15 = 2/5;  clip 0 frame 2 centre 2/5 * 2.5 = 1  -> index 1 (floats gave 0)
    assert temporal_indices(total, num_frames, clips) == _exact_indices(total, num_frames, clips)


def test_temporal_indices_exact_on_a_full_sweep():
    for total in range(1, 120):
        for num_frames in (1, 3, 4, 6, 16):
            for clips in (1, 2, 3, 5):
                assert temporal_indices(total, num_frames, clips) == _exact_indices(total, num_frames, clips)


def test_temporal_indices_exact_on_a_sweep_where_floats_are_exact():
    # Power-of-two segment lengths keep the float arithmetic exact, so here the code
    # must agree with the exact rule.
    for total in (8, 16, 32, 64, 128, 256):
        for num_frames in (1, 2, 4, 8):
            for clips in (1, 2, 4):
                assert temporal_indices(total, num_frames, clips) == _exact_indices(total, num_frames, clips)


def test_temporal_indices_zero_frames_is_a_tokbench_error():
    with pytest.raises(TokbenchError):
        temporal_indices(8, 0)


def test_temporal_indices_zero_clips_is_a_tokbench_error():
    with pytest.raises(TokbenchError):
        temporal_indices(8, 4, clips=0)


# --------------------------------------------------------------------------- crops


def _column_clip(T: int, H: int, W: int, offset: int = 0) -> torch.Tensor:
    """uint8 (T, H, W, 3) whose every pixel holds its column index (+ offset)."""
    cols = torch.arange(W, dtype=torch.uint8) + offset
    return cols.view(1, 1, W, 1).expand(T, H, W, 3).contiguous()


def _row_clip(T: int, H: int, W: int) -> torch.Tensor:
    """uint8 (T, H, W, 3) whose every pixel holds its row index."""
    rows = torch.arange(H, dtype=torch.uint8)
    return rows.view(1, H, 1, 1).expand(T, H, W, 3).contiguous()


def _unnormalize(view: torch.Tensor) -> torch.Tensor:
    """(C, T, S, S) normalised -> pixel values in [0, 255] (float)."""
    return (view * STD + MEAN) * 255.0


def _decoded(view: torch.Tensor) -> torch.Tensor:
    """(C, T, S, S) normalised view of an integer-valued clip -> the integer values."""
    return _unnormalize(view).round().long()


def test_three_crops_of_a_landscape_frame_are_left_centre_right():
    spec = ViewSpec(num_frames=2, size=8, spatial_crops=3)
    out = to_views([_column_clip(2, 8, 24)], spec)  # short side already 8: no resize
    assert out.shape == (3, 3, 2, 8, 8)
    for crop, first in enumerate((0, 8, 16)):
        want = torch.arange(first, first + 8).expand(3, 2, 8, 8)
        assert torch.equal(_decoded(out[crop]), want), crop


def test_three_crops_with_an_odd_margin():
    # W = 25, S = 8: margins 17 -> centre offset 17 // 2 = 8, right offset 17
    out = to_views([_column_clip(1, 8, 25)], ViewSpec(num_frames=1, size=8, spatial_crops=3))
    assert [_decoded(v)[0, 0, 0, 0].item() for v in out] == [0, 8, 17]
    assert [_decoded(v)[0, 0, 0, -1].item() for v in out] == [7, 15, 24]


def test_three_crops_of_a_portrait_frame_are_top_centre_bottom():
    spec = ViewSpec(num_frames=2, size=8, spatial_crops=3)
    out = to_views([_row_clip(2, 24, 8)], spec)
    assert out.shape == (3, 3, 2, 8, 8)
    for crop, first in enumerate((0, 8, 16)):
        want = torch.arange(first, first + 8).view(8, 1).expand(3, 2, 8, 8)
        assert torch.equal(_decoded(out[crop]), want), crop


def test_one_crop_is_the_centre():
    out = to_views([_column_clip(2, 8, 24)], ViewSpec(num_frames=2, size=8))
    assert out.shape == (3, 2, 8, 8)
    assert torch.equal(_decoded(out), torch.arange(8, 16).expand(3, 2, 8, 8))
    out = to_views([_row_clip(2, 24, 8)], ViewSpec(num_frames=2, size=8))
    assert torch.equal(_decoded(out), torch.arange(8, 16).view(8, 1).expand(3, 2, 8, 8))


def test_spatial_crops_directly():
    frames = torch.arange(10).float().view(1, 1, 1, 10).expand(3, 2, 6, 10)  # (C, T, H=6, W=10)
    crops = spatial_crops(frames, 6, 3)
    assert [c.shape for c in crops] == [(3, 2, 6, 6)] * 3
    assert [c[0, 0, 0, 0].item() for c in crops] == [0, 2, 4]
    (centre,) = spatial_crops(frames, 6, 1)
    assert centre[0, 0, 0].tolist() == [2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("hw", "size", "want"),
    [
        ((16, 48), 8, (8, 24)),
        ((48, 16), 8, (24, 8)),
        ((240, 320), 224, (224, 299)),
        ((320, 240), 224, (299, 224)),
        ((8, 24), 8, (8, 24)),
        ((100, 100), 32, (32, 32)),
        ((4, 6), 8, (8, 12)),
    ],
)
def test_resize_short_side_keeps_aspect(hw, size, want):
    H, W = hw
    out = _resize_short_side(torch.rand(3, 2, H, W), size)
    assert out.shape == (3, 2, *want)
    assert min(out.shape[-2:]) == size
    assert abs(out.shape[-1] / out.shape[-2] - W / H) <= 1 / size  # aspect kept up to one pixel of rounding


def test_resize_then_crop_samples_the_right_columns():
    # (16, 48) -> (8, 24), halving: new column j is centred on old column 2j + 0.5, so a
    # ramp of value 5 * column reads 5 * (2j + 0.5) away from the borders.
    ramp = (torch.arange(48) * 5).to(torch.uint8).view(1, 1, 48, 1).expand(2, 16, 48, 3).contiguous()
    out = to_views([ramp], ViewSpec(num_frames=2, size=8, spatial_crops=3))
    assert out.shape == (3, 3, 2, 8, 8)
    pix = [_unnormalize(v) for v in out]
    centre_cols = torch.arange(8, 16, dtype=torch.float32)
    assert torch.allclose(pix[1][0, 0, 0], 5 * (2 * centre_cols + 0.5), atol=1e-3)
    means = [p.mean().item() for p in pix]
    assert means[0] < means[1] < means[2]
    assert means[1] == pytest.approx(5 * 23.5, abs=1e-3)  # old columns 16..31, centre 23.5


# --------------------------------------------------------------------------- to_views layout


def test_to_views_shapes_and_clip_major_order():
    spec = ViewSpec(num_frames=3, size=8, temporal_clips=2, spatial_crops=3)
    assert spec.views == 6
    clips = [_column_clip(3, 8, 24), _column_clip(3, 8, 24, offset=100)]
    out = to_views(clips, spec)
    assert out.shape == (6, 3, 3, 8, 8) and out.dtype == torch.float32
    firsts = [_decoded(v)[0, 0, 0, 0].item() for v in out]
    # v = clip * 3 + crop
    assert firsts == [0, 8, 16, 100, 108, 116]


def test_to_views_one_view_has_no_view_axis():
    out = to_views([_column_clip(4, 10, 10)], ViewSpec(num_frames=4, size=8))
    assert out.shape == (3, 4, 8, 8)
    out = to_views([_column_clip(4, 10, 10), _column_clip(4, 10, 10)], ViewSpec(num_frames=4, size=8, temporal_clips=2))
    assert out.shape == (2, 3, 4, 8, 8)


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("v", [0, 37, 128, 255])
def test_solid_clip_normalises_per_channel(v):
    clip = torch.full((2, 20, 30, 3), v, dtype=torch.uint8)  # needs a resize to 8
    out = to_views([clip], ViewSpec(num_frames=2, size=8, spatial_crops=3))
    assert out.shape == (3, 3, 2, 8, 8)
    for c in range(3):
        want = (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(out[:, c], torch.full_like(out[:, c], want), atol=1e-5), c


def test_channels_keep_rgb_order():
    clip = torch.empty(1, 8, 8, 3, dtype=torch.uint8)
    clip[..., 0], clip[..., 1], clip[..., 2] = 10, 100, 200
    out = to_views([clip], ViewSpec(num_frames=1, size=8))
    for c, v in enumerate((10, 100, 200)):
        want = (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(out[c], torch.full_like(out[c], want), atol=1e-6)


def test_normalize_directly():
    frames = torch.rand(3, 2, 4, 4)
    assert torch.allclose(normalize(frames), (frames - MEAN) / STD)


# --------------------------------------------------------------------------- ViewSpec


def test_viewspec_defaults_and_views():
    spec = ViewSpec()
    assert (spec.num_frames, spec.size, spec.temporal_clips, spec.spatial_crops) == (16, 224, 1, 1)
    assert spec.views == 1
    assert ViewSpec(temporal_clips=5, spatial_crops=3).views == 15


@pytest.mark.parametrize(
    "kwargs",
    [{"spatial_crops": 2}, {"spatial_crops": 0}, {"num_frames": 0}, {"size": 0}, {"temporal_clips": 0}, {"num_frames": -1}],
)
def test_viewspec_validation(kwargs):
    with pytest.raises(TokbenchError):
        ViewSpec(**kwargs)


def test_to_views_needs_one_decoded_clip_per_temporal_clip():
    clip = torch.zeros(4, 16, 16, 3, dtype=torch.uint8)
    spec = ViewSpec(num_frames=4, size=16, temporal_clips=2)
    with pytest.raises(TokbenchError, match="expected 2 decoded clip"):
        to_views([clip], spec)
    assert to_views([clip, clip], spec).shape == (2, 3, 4, 16, 16)
