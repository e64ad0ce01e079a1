"""RLT and the LITE cue baselines (motion, attention): hand-worked masks and scores,
no-reduction equivalence, padding, calibration."""

from types import SimpleNamespace

import pytest
import torch

from tokbench.backbones import BACKBONES
from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods import build_method
from tokbench.methods.cues import attention_received, motion_magnitude
from tokbench.methods.rlt import calibrate_threshold, padded_indices, tubelet_differences

# test_tiny geometry: 4 frames of 32 x 32, tubelets 2 x 8 x 8 -> grid (2, 4, 4), 32 tokens.


def _still_clip(batch: int = 1) -> torch.Tensor:
    return torch.zeros(batch, 3, 4, 32, 32)


def test_rlt_mask_on_a_clip_with_one_moving_patch():
    video = _still_clip()
    video[:, :, 3, 8:16, 16:24] = 1.0  # patch (h=1, w=2) changes in frame 3 (last of tubelet 1)
    d = tubelet_differences(video, 2, 8)
    assert d.shape == (1, 2, 4, 4) and torch.isinf(d[:, 0]).all()
    assert d[0, 1, 1, 2] == 1.0 and d[0, 1].sum() == 1.0
    method = build_method("rlt(tau=0.1)")
    method.setup(SimpleNamespace(config=BACKBONES.get("test_tiny")))  # setup reads only the geometry
    keep = method.keep_mask(video)
    assert keep[0].nonzero().flatten().tolist() == list(range(16)) + [16 + 1 * 4 + 2]


def test_rlt_compares_last_frame_of_next_tubelet_with_first_of_previous():
    # A change in frame 2 (first frame of tubelet 1) or frame 1 is invisible to RLT's test
    # (frame 3 vs frame 0), exactly as upstream's batched_find_idxs_to_keep.
    for frame in (1, 2):
        video = _still_clip()
        video[:, :, frame, 0:8, 0:8] = 1.0
        assert tubelet_differences(video, 2, 8)[0, 1].sum() == 0


def test_rlt_tau_below_every_difference_equals_none(tiny, tiny_video):
    method = build_method("rlt(tau=-1.0)")
    method.setup(tiny)
    torch.testing.assert_close(tiny(tiny_video, method), tiny(tiny_video), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("batching", ["pad", "split"])
def test_rlt_variable_length_batch_matches_clip_by_clip(tiny, batching):
    video = torch.randn(3, 3, 4, 32, 32, generator=torch.Generator().manual_seed(5))
    video[0, :, 3] = video[0, :, 0]  # clip 0: frame 3 = frame 0, so all of slice 1 repeats
    video[1, :, 3, :16] = video[1, :, 0, :16]  # clip 1: the top half of slice 1 repeats
    method = build_method(f"rlt(tau=0.5, batching={batching!r})")
    method.setup(tiny)
    logits, counts = tiny.forward_with_info(video, method)
    assert counts[:, 0].tolist() == [17, 25, 33]  # CLS + kept; padding not counted
    one_by_one = torch.cat([tiny(video[i : i + 1], method) for i in range(3)])
    torch.testing.assert_close(logits, one_by_one, atol=1e-5, rtol=1e-5)


def test_padded_indices_by_hand():
    keep = torch.tensor([[True, False, True, False], [False, False, False, True]])
    assert padded_indices(keep).tolist() == [[0, 2], [3, -1]]


def test_calibration_hits_p_and_reports_the_distribution():
    # Two clips, T' = 2, 4 positions each: differences of slice 1 are 1..8 over both clips.
    diffs = torch.cat([torch.full((2, 1, 2, 2), torch.inf), torch.arange(1.0, 9).reshape(2, 1, 2, 2)], dim=1)
    tau, fractions = calibrate_threshold(diffs, 0.75)  # keep 4 of the 8 slice-1 tokens: d > 4
    assert tau == 4.0 and fractions.tolist() == [0.5, 1.0]
    assert calibrate_threshold(diffs, 1.0)[0] < 1.0  # everything kept
    assert calibrate_threshold(diffs, 0.5)[1].tolist() == [0.5, 0.5]
    with pytest.raises(UnreachableError, match="below 0.5: the first of the 2 temporal slices"):
        calibrate_threshold(diffs, 0.4)


def test_rlt_calibration_on_clips_then_describe(tiny):
    video = torch.randn(6, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    video[:3, :, 3] = video[:3, :, 0] + 0.01 * torch.randn(3, 3, 32, 32)  # three static clips
    method = build_method("rlt", p_ratio=0.75)
    method.setup(tiny)
    with pytest.raises(TokbenchError, match="calibrate"):
        tiny(video, method)
    method.calibrate(video)
    state = method.describe()
    assert state["calibrated"] and state["calibration_clips"] == 6
    assert state["kept_fraction_mean"] == pytest.approx(0.75, abs=1 / 192)
    assert state["kept_fraction_min"] == 0.5 and state["kept_fraction_max"] == 1.0
    method.setup(tiny)  # a second setup (FLOP counting) keeps the calibration
    assert method.describe()["tau"] == state["tau"]


# -- motion ---------------------------------------------------------------------------------

def test_motion_magnitude_by_hand():
    video = _still_clip()
    video[:, 0, 1, 0:8, 8:16] = 3.0  # frame 1 differs in one patch of channel 0
    m = motion_magnitude(video, 2, 8).reshape(2, 4, 4)
    # Tubelet (0, 0, 1): frame diffs |f1 - f0| = 3 (frame 0 reuses it) -> mean over C = 1.
    # Tubelet (1, 0, 1): |f2 - f1| = 3 for frame 2, 0 for frame 3 -> (1 + 0) / 2.
    assert m[0, 0, 1] == 1.0 and m[1, 0, 1] == 0.5 and m.sum() == 1.5


def test_motion_keeps_the_moving_tubelets(tiny):
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.01
    video[:, :, 1::2, 16:24, 0:8] += 2.0  # flickering patch (h=2, w=0) in both tubelets
    method = build_method("motion", p_ratio=2 / 32)
    method.setup(tiny)
    from tokbench.tokens import Clips

    index = method.before_embed(Clips(video, torch.arange(2)), 32)
    assert index.tolist() == [[8, 24], [8, 24]]


# -- attention --------------------------------------------------------------------------------

def test_attention_received_by_hand():
    probs = torch.tensor([[0.1, 0.6, 0.3], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])[None, None]
    torch.testing.assert_close(attention_received(probs, 1), torch.tensor([[0.4, 0.4]]))
    torch.testing.assert_close(attention_received(probs, 0), torch.tensor([[0.2, 0.4, 0.4]]))


def test_attention_cue_selects_after_the_chosen_block(tiny, tiny_video):
    method = build_method("attention(layer=1)", p_ratio=0.5)
    method.setup(tiny)
    _, counts = tiny.forward_with_info(tiny_video, method)
    assert counts[0].tolist() == [33, 33]  # selection happens inside block 1, before its MLP
    with pytest.raises(TokbenchError, match="layer 2 does not exist"):
        build_method("attention(layer=2)").setup(tiny)


def test_rlt_flops_are_the_mean_of_per_clip_costs(tiny):
    """Counted once per distinct kept count, averaged over clips: equals the closed form of
    each clip's count (E[F(K)], not F(E[K]))."""
    from tokbench.benchmark.flops import count_flops
    from tokbench.methods.flop_matching import model_flops

    video = torch.randn(4, 3, 4, 32, 32, generator=torch.Generator().manual_seed(5))
    video[0, :, 3] = video[0, :, 0]
    video[1, :, 3, :16] = video[1, :, 0, :16]
    video[2, :, 3] = video[2, :, 0]  # same count as clip 0: traced once
    method = build_method("rlt(tau=0.5)")
    method.setup(tiny)
    count = count_flops(tiny.config, method, videos=video)
    kept = [16, 24, 16, 32]
    expected = [model_flops(tiny.config, embedded=k, tokens=[k + 1] * 2) / 1e9 for k in kept]
    assert count.gflops == pytest.approx(sum(expected) / 4, rel=1e-12)
    assert count.tokens_per_block == [sum(kept) / 4 + 1] * 2 and count.clips == 4
