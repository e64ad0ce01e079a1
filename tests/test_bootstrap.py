"""Bootstrap intervals and paired comparisons, on hand-made outcomes with known resamples."""

from __future__ import annotations

import math

import pytest
import torch

from tokbench.data import bootstrap
from tokbench.data.bootstrap import Scored, bootstrap_intervals, clip_flags, paired_difference


def _single(correct: list[int], classes: int = 3) -> Scored:
    """Scores whose argmax is the label (class 0) exactly where ``correct`` is 1."""
    n = len(correct)
    scores = torch.zeros(n, classes)
    for i, ok in enumerate(correct):
        scores[i, 0 if ok else 1] = 1.0
    return Scored("single", scores, torch.zeros(n, dtype=torch.long))


def test_flags_are_the_per_clip_outcomes():
    s = _single([1, 0, 1])
    assert clip_flags(s, s.scores)["top1"].tolist() == [1.0, 0.0, 1.0]
    assert clip_flags(s, s.scores)["top5"].tolist() == [1.0, 1.0, 1.0]  # 3 classes: always in the top 5
    vn = Scored("verb_noun", torch.tensor([[2.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0]]),
                torch.tensor([[0, 1], [0, 0]]), num_verbs=2)
    flags = clip_flags(vn, vn.scores)
    assert flags["verb_top1"].tolist() == [1.0, 0.0] and flags["noun_top1"].tolist() == [1.0, 1.0]
    assert flags["action_top1"].tolist() == [1.0, 0.0]


def test_resamples_with_known_draws():
    s = _single([1, 1, 0, 0])
    clips = torch.tensor([[0, 0, 0, 0], [0, 1, 2, 3], [2, 3, 2, 3], [0, 2, 2, 2]])
    values = bootstrap._resampled(s, bootstrap._counts(clips, 4), torch.zeros(4, 1, dtype=torch.long))
    assert values["top1"].tolist() == [1.0, 0.5, 0.0, 0.25]
    # Two seeds: resample 0 takes seed 1 twice, resample 1 each seed once.
    other = Scored("single", [s.scores, _single([0, 0, 1, 1]).scores], s.labels)
    two = bootstrap._resampled(other, bootstrap._counts(clips[:2], 4), torch.tensor([[1, 1], [0, 1]]))
    only = bootstrap._resampled(other, bootstrap._counts(clips[:2], 4), torch.tensor([[1, 1], [0, 1]]), "top5")
    assert list(only) == ["top5"] and only["top5"].tolist() == [1.0, 1.0]  # 2 classes: top-5 always hits
    assert two["top1"].tolist() == [0.0, 0.5]  # clip 0 four times on seed 1: wrong; all clips, both seeds: half


def test_map_is_recomputed_per_resample():
    scores = torch.tensor([[0.9, 0.1], [0.5, 0.8], [0.2, 0.3]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 1]])
    s = Scored("multilabel", scores, targets)
    clips = torch.tensor([[0, 1, 2], [0, 0, 1]])
    values = bootstrap._resampled(s, bootstrap._counts(clips, 3), torch.zeros(2, 1, dtype=torch.long)).get("mAP")
    # All three clips: class 0 ranks (0.9+, 0.5-, 0.2+): AP = (1 + 2/3)/2; class 1 (0.8+, 0.3+, 0.1-): AP = 1.
    assert values[0].item() == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    # Clips 0, 0, 1: class 0 has positives (0.9, 0.9) ranked first: AP 1; class 1: one positive first: AP 1.
    assert values[1].item() == pytest.approx(1.0)


def test_interval_brackets_the_value_and_has_the_binomial_width():
    s = _single([1, 0] * 200)  # 400 clips, half right
    (value, lo, hi), = [bootstrap_intervals(s, resamples=2000, seed=3)["top1"]]
    assert value == 0.5 and lo < 0.5 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 400), rel=0.1)  # the normal approximation
    assert bootstrap_intervals(s, resamples=2000, seed=3)["top1"] == (value, lo, hi)  # seeded: reproducible
    assert bootstrap_intervals(_single([1] * 50))["top1"] == (1.0, 1.0, 1.0)


def test_seed_variance_widens_the_interval():
    clips = [1, 0] * 100
    one = _single(clips)
    same = Scored("single", [one.scores, one.scores, one.scores], one.labels)
    assert bootstrap_intervals(same, seed=1)["top1"][0] == 0.5
    shifted = [_single([1] * 140 + [0] * 60).scores, _single([1] * 60 + [0] * 140).scores, one.scores]
    varied = Scored("single", shifted, one.labels)
    lo1, hi1 = bootstrap_intervals(same, seed=1)["top1"][1:]
    lo3, hi3 = bootstrap_intervals(varied, seed=1)["top1"][1:]
    assert bootstrap_intervals(varied, seed=1)["top1"][0] == pytest.approx(0.5)  # the mean over seeds
    assert hi3 - lo3 > 1.5 * (hi1 - lo1)


def test_paired_difference_is_tighter_than_two_intervals():
    base = [1] * 50 + [0] * 50
    better = [1] * 60 + [0] * 40  # right on 10 more clips, wrong on none that B gets right
    a, b = _single(better), _single(base)
    d = paired_difference(a, b, "top1", seed=0)
    assert d.value == pytest.approx(0.1) and d.significant and d.low > 0 and d.p_value < 0.01
    # Separately, the two intervals overlap: unpaired, the same data would look like a tie.
    _, lo_a, _ = bootstrap_intervals(a, seed=0)["top1"]
    _, _, hi_b = bootstrap_intervals(b, seed=0)["top1"]
    assert lo_a < hi_b
    same = paired_difference(b, b, "top1")
    assert (same.value, same.low, same.high) == (0.0, 0.0, 0.0) and not same.significant and same.p_value == 1.0


def test_paired_difference_needs_the_same_clips():
    with pytest.raises(Exception, match="same clips"):
        paired_difference(_single([1, 0]), _single([1, 0, 1]), "top1")
    with pytest.raises(Exception, match="no metric 'mAP'"):
        paired_difference(_single([1, 0]), _single([0, 1]), "mAP")


def test_weighted_map_equals_the_map_of_the_resampled_rows():
    from tokbench.data.metrics import mean_average_precision

    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (30, 5), generator=gen).float()  # many ties
    targets = (torch.rand(30, 5, generator=gen) < 0.3).long()
    clips = torch.randint(30, (40, 30), generator=gen)
    weights = torch.zeros(40, 30, dtype=torch.float64).scatter_add_(1, clips, torch.ones(40, 30, dtype=torch.float64))
    fast = bootstrap.weighted_map(scores, targets, weights, chunk_elements=700)  # several chunks
    for r in range(40):
        idx = clips[r]
        if targets[idx].sum() == 0:
            assert math.isnan(fast[r])
        else:
            assert fast[r].item() == pytest.approx(mean_average_precision(scores[idx], targets[idx]), abs=1e-12)


def test_memoised_map_resamples_follow_the_content_of_their_inputs():
    scores = torch.tensor([[0.9, 0.1], [0.5, 0.8], [0.2, 0.3]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 1]])
    counts = bootstrap._counts(torch.tensor([[0, 1, 2], [0, 0, 1]]), 3)
    first = bootstrap._resampled_map(scores, targets, counts)
    torch.testing.assert_close(first, bootstrap.weighted_map(scores, targets, counts))
    assert bootstrap._resampled_map(scores.clone(), targets.clone(), counts.clone()) is first  # same content: reused
    swapped = bootstrap._resampled_map(scores.flip(1), targets, counts)  # other scores: computed anew
    torch.testing.assert_close(swapped, bootstrap.weighted_map(scores.flip(1), targets, counts))
    assert not torch.equal(swapped, first)
