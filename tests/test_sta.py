"""STA (Ding et al., ICCV 2023): the two scores and the pruning decision on hand-worked
examples, upstream's schedule (blocks, groups, tokens), its FLOPs (LITE's 116 GFLOPs), and
the method on the backbone."""

import math

import pytest
import torch

from tokbench.backbones import BACKBONES, create_backbone
from tokbench.benchmark.flops import count_flops
from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods import build_method
from tokbench.methods.flop_matching import reference_gflops
from tokbench.methods.sta import first_group_order, semantic_scores, sta_flops, sta_keep_indices, sta_stages

E = math.e


def features(norms):
    """(1, N, 2) tokens whose L1 norms are ``norms``."""
    return torch.tensor([[[float(n), 0.0] for n in norms]])


def test_semantic_score_is_the_min_max_normalised_l1_norm_per_group():
    x = torch.tensor([[[[1.0, -2.0], [0.5, 0.5], [-4.0, 0.0]], [[2.0, 2.0], [2.0, -2.0], [-4.0, 0.0]]]])  # (1, 2, 3, 2)
    # group 0: |x|_1 = 3, 1, 4 -> (3-1)/3, 0, 1; group 1: all 4 -> no spread, all 0 (upstream: 0/0)
    assert torch.allclose(semantic_scores(x), torch.tensor([[[2 / 3, 0.0, 1.0], [0.0, 0.0, 0.0]]]))


def test_first_group_puts_odd_tokens_first_then_even_ones_by_ascending_similarity():
    # even tokens 0 (1,0) and 2 (0,1); odd tokens 1 (1,0) and 3 (0.6,0.8).
    # Best similarity to an odd token: token 0 -> 1.0 (token 1), token 2 -> 0.8 (token 3).
    m = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]])
    assert first_group_order(m).tolist() == [[1, 3, 2, 0]]  # r = 1 drops token 0, the most redundant


def test_two_groups_hand_worked_scores_and_decision():
    """Group 0 as above; group 1's keys are +-e1, +-e2 and its L1 norms 1, 3, 2, 5.

    Temporal accumulation A_i = sum_j softmax_i(k_i . k'_j) over all 4 tokens j of group 0
    (the dropped one included, as upstream compares with m_0 before the cut):
    columns j = 0, 1 (1,0): sims (1, 0, -1, 0); j = 2 (0,1): (0, 1, 0, -1); j = 3: (.6, .8, -.6, -.8).
    """
    Z = E + 2 + 1 / E
    Z3 = E**0.6 + E**0.8 + E**-0.6 + E**-0.8
    A = torch.tensor([2 * E / Z + 1 / Z + E**0.6 / Z3, 2 / Z + E / Z + E**0.8 / Z3,
                      2 / (E * Z) + 1 / Z + E**-0.6 / Z3, 2 / Z + 1 / (E * Z) + E**-0.8 / Z3])
    assert abs(A.sum().item() - 4) < 1e-6  # every previous token spreads one unit of mass
    S = torch.tensor([0.0, 0.5, 0.25, 1.0])  # (|x| - 1) / (5 - 1)
    sta = A * (1 - S)  # 1.627, 0.684, 0.338, 0: token 4 (like every seen token, least semantic) goes
    assert sta.argmax().item() == 0 and sta.argsort().tolist() == [3, 2, 1, 0]
    metric = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8],
                            [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]])
    x = features([1, 1, 1, 1, 1, 3, 2, 5])
    kept = sta_keep_indices(x, 2 * metric, groups=2, r=1)  # keys are normalised first
    assert kept.tolist() == [[1, 3, 2, 7, 6, 5]]  # group 0 in tome_drop order, group 1 by ascending STA
    # r = 2: group 0 drops its two even tokens; group 1 keeps the two lowest STA
    assert sta_keep_indices(x, metric, groups=2, r=2).tolist() == [[1, 3, 7, 6]]


def test_accumulation_follows_the_kept_tokens_of_the_previous_group():
    """Three groups of two tokens, keys e1, e2 in each, r = 1.

    Group 0: token 0 is dropped (odd first). Group 1 against both group-0 tokens: A = (1, 1);
    |x| = 1, 2 -> S = (0, 1), STA = (1, 0): token 3 (e2) is kept, A renormalised to (1).
    Group 2 against the kept token 3 only: A = (1, e) / (1 + e); equal norms -> S = 0, so
    token 4 (A = 1 / (1 + e)) is kept. Against both group-1 tokens it would be a tie.
    """
    metric = torch.tensor([[[1.0, 0.0], [0.0, 1.0]] * 3])
    x = features([1, 1, 1, 2, 3, 3])
    assert sta_keep_indices(x, metric, groups=3, r=1).tolist() == [[1, 3, 4]]
    # Backwards (upstream's L//3 stage): group 2 first keeps token 5, group 1 keeps 3 (S), group 0
    # against token 3 keeps token 0; the result is still in time order.
    assert sta_keep_indices(x, metric, groups=3, r=1, reverse=True).tolist() == [[0, 3, 5]]


def test_upstream_schedule_on_videomae_b_and_the_116_gflops_point():
    stages = sta_stages(12, (8, 14, 14), 48)
    assert [(s.block, s.groups, s.tokens, s.reverse) for s in stages] == [
        (0, 8, 196, False), (4, 4, 296, True), (8, 2, 496, False)]  # 196 - 48 = 148 per slice, 2 x 148 ...
    flops, _, tokens = sta_flops(BACKBONES.get("videomae_b"), 48)
    assert tokens == [1568] + [1184] * 4 + [992] * 4 + [896] * 3
    # LITE Tables 1-2: VideoMAE-STA 116 GFLOPs; upstream's fvcore sweep (ViT-B, 400 classes) counts the same
    assert flops == 115_864_495_456
    assert count_flops(BACKBONES.get("videomae_b"), build_method("sta(r=48)")).gflops * 1e9 == pytest.approx(flops, abs=1)


@pytest.mark.parametrize(("depth", "blocks"), [(24, [0, 8, 16]), (4, [0, 1, 2]), (3, [0, 1]), (2, [0]), (1, [])])
def test_stage_blocks_on_other_depths(depth, blocks):
    assert [s.block for s in sta_stages(depth, (8, 6, 6), 4)] == blocks


def test_r_that_empties_a_group_is_an_error():
    # zoo grid: 36 per slice -> stage 1 groups of 2 (36 - r), stage 2 of 2 (2 (36 - r) - r); r = 20 is the last valid
    assert sta_stages(4, (8, 6, 6), 20)[-1].tokens - 20 == 4
    with pytest.raises(TokbenchError, match="r=21 leaves no token in the 18-token temporal groups after block 2"):
        sta_stages(4, (8, 6, 6), 21)
    with pytest.raises(TokbenchError, match="r must be a non-negative integer"):
        build_method("sta(r=-1)")


@pytest.mark.parametrize(("backbone", "r"), [("test_tiny", 5), ("synth_tiny", 9), ("synth_tiny", 20)])
def test_closed_form_equals_fvcore(backbone, r):
    config = BACKBONES.get(backbone)
    assert count_flops(config, build_method(f"sta(r={r})")).gflops * 1e9 == pytest.approx(sta_flops(config, r)[0], abs=1)


def test_p_ratio_is_flop_matched_and_recorded():
    config = BACKBONES.get("videomae_b")
    method = build_method("sta", p_ratio=0.7)
    method.setup(_meta("videomae_b"))
    state = method.describe()
    target = reference_gflops(config, 0.7)
    costs = {r: sta_flops(config, r)[0] / 1e9 for r in range(0, 100)}
    assert state["r"] == min(costs, key=lambda r: abs(costs[r] - target))
    assert abs(state["closed_form_gflops"] / target - 1) < 0.01 and state["target_gflops"] == target
    assert [s["block"] for s in state["stages"]] == [0, 4, 8]
    with pytest.raises(UnreachableError, match="P-Ratio 0.2 needs 30.37 GFLOPs but pruning cannot go below 46.19"):
        build_method("sta", p_ratio=0.2).setup(_meta("videomae_b"))


def _meta(name):
    from tokbench.backbones.vit import VideoViT

    with torch.device("meta"):
        return VideoViT(BACKBONES.get(name))


def test_on_the_backbone_pruned_tokens_are_dropped_per_slice():
    model = create_backbone("synth_tiny")  # 8 x 6 x 6 tokens + CLS, 4 blocks
    method = build_method("sta(r=9)")
    method.setup(model)
    video = torch.randn(2, 3, 16, 48, 48)
    _, counts = model.forward_with_info(video, method)
    assert counts.tolist() == [[289, 217, 181, 163]] * 2  # 8 x 27, 4 x (54 - 9), 2 x (90 - 9), + CLS
    tokens = model.trace_tokens(video, method)
    slices = tokens.index // 36
    # Each token is one original patch (dropped, not merged); the last stage's groups (halves of
    # the clip) stay in time order.
    halves = slices // 4
    assert (tokens.source[:, 1:].sum(-1) == 1).all() and (halves[:, 1:] >= halves[:, :-1]).all()
    kept = torch.stack([(slices == t).sum(1) for t in range(8)], dim=1)
    assert (kept.view(2, 2, 4).sum(-1) == 81).all()  # 81 kept per half of the clip after the last stage
