"""ToMe and vid-TLDR: hand-worked cores, no-reduction equivalence, FLOP matching."""

import math

import pytest
import torch

from tokbench.backbones import BACKBONES
from tokbench.benchmark.flops import count_flops
from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods import build_method
from tokbench.methods.flop_matching import front_loaded_r_list, merge_schedule, model_flops, tome_r_list
from tokbench.methods.merging import attention_saliency, bipartite_soft_matching, merge_weighted
from tokbench.methods.tome import merge_tokens
from tokbench.methods.vid_tldr import unbiased_probs
from tokbench.tokens import Tokens

# Six tokens: A = positions 0, 2, 4 and B = 1, 3, 5 (ToMe's alternate split).
# cos(t2, t3) = 1/sqrt(1.01) = .995 > cos(t0, t1) = 1/sqrt(1.04) = .981 > cos(t4, t5) = .671.
METRIC = torch.tensor([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.1, 1.0], [-1.0, 0.05], [-1.0, -1.0]])[None]
X = torch.arange(6.0).reshape(1, 6, 1)


def test_tome_six_token_merge_by_hand():
    m = bipartite_soft_matching(METRIC, 2)
    assert m.src_idx.tolist() == [[1, 0]] and m.dst_idx.tolist() == [[1, 0]] and m.unm_idx.tolist() == [[2]]
    x, size = merge_weighted(m, X, torch.ones(1, 6, 1))
    # [t4 unmerged, t1 + t0, t3 + t2, t5]
    assert x.flatten().tolist() == [4.0, 0.5, 2.5, 5.0]
    assert size.flatten().tolist() == [1.0, 2.0, 2.0, 1.0]
    # Sizes weight the average: t0 already stands for 3 patches.
    x, size = merge_weighted(m, X, torch.tensor([3.0, 1, 1, 1, 1, 1]).reshape(1, 6, 1))
    assert x.flatten().tolist() == [4.0, 0.25, 2.5, 5.0] and size.flatten().tolist() == [1.0, 4.0, 2.0, 1.0]


def test_tome_protects_the_prefix_token_and_tracks_positions():
    tokens = Tokens(x=X, index=torch.arange(5)[None], n_prefix=1)  # t0 is CLS; patches 0..4
    out = merge_tokens(tokens, METRIC, 2)
    # CLS (A row 0) cannot merge: t2 -> t3 and t4 -> t5 instead; CLS stays first.
    assert out.x.flatten().tolist() == [0.0, 1.0, 2.5, 4.5]
    assert out.size.flatten().tolist() == [1.0, 1.0, 2.0, 2.0]
    assert out.index.tolist() == [[0, 2, 4]]  # patch positions of t1, t3, t5
    assert out.n_prefix == 1


# Eight tokens without a prefix, unit vectors at these angles (degrees); the metric is x.
# A = t0 t2 t4 t6, B = t1 t3 t5 t7. Best matches: t2-t3 (1 deg), t6-t7 (2), t4-t5 (20), t0-t1 (50).
ANGLES = [0, 50, 100, 101, 200, 220, 300, 302]


def _unit_tokens() -> Tokens:
    rad = torch.tensor(ANGLES, dtype=torch.float64) * math.pi / 180
    return Tokens(x=torch.stack([rad.cos(), rad.sin()], dim=-1)[None], index=torch.arange(8)[None], n_prefix=0)


def _two_merges(keep_order):
    first = merge_tokens(_unit_tokens(), _unit_tokens().x, 2, keep_order=keep_order)
    return first, merge_tokens(first, first.x, 1, keep_order=keep_order)


def test_tome_without_a_class_token_keeps_score_order_over_two_merges():
    # First merge (r=2): t2->t3 and t6->t7; unmerged A in score order t4 (cos 20) then t0 (cos 50),
    # not position order: [t4, t0, t1, t23, t5, t67] (ToMe's merge.py sorts only if class_token).
    first, second = _two_merges(keep_order=None)
    assert first.index.tolist() == [[4, 0, 1, 3, 5, 7]]
    assert first.size.flatten().tolist() == [1, 1, 1, 2, 1, 2]
    # Second merge (r=1) splits that order: A = t4 t1 t5, B = t0 t23 t67. Best: t1->t0 (50 deg),
    # t5->t67 (81), t4->t23 (99.5); t1 merges into t0; unmerged t5 (cos 81) before t4 (cos 99.5).
    assert second.index.tolist() == [[5, 4, 0, 3, 7]]
    assert second.size.flatten().tolist() == [1, 1, 2, 2, 2]
    want_t01 = torch.tensor([1 + math.cos(math.radians(50)), math.sin(math.radians(50))]) / 2
    assert torch.allclose(second.x[0, 2].float(), want_t01.float(), atol=1e-6)


def test_position_order_merges_other_pairs_from_the_second_merge_on():
    # vid-TLDR's order (and tokbench's ToMe before): [t0, t4, t1, t23, t5, t67], so the second
    # split is A = t0 t1 t5, B = t4 t23 t67 and t5 merges into t4 (20 deg) instead of t1 into t0.
    first, second = _two_merges(keep_order=True)
    assert first.index.tolist() == [[0, 4, 1, 3, 5, 7]]
    assert second.index.tolist() == [[0, 1, 4, 3, 7]]
    assert second.size.flatten().tolist() == [1, 1, 2, 2, 2]


@pytest.mark.parametrize("class_token", [False, True])
def test_tome_on_a_backbone_orders_the_kept_tokens_as_upstream(class_token):
    from tokbench.backbones import create_backbone

    torch.manual_seed(0)
    kw = {} if class_token else {"class_token": False, "global_pool": "avg"}
    model = create_backbone("test_tiny", depth=1, **kw)  # one block: the tokens after one merge
    method = build_method("tome(r=8)", p_ratio=1.0)
    method.setup(model)
    out = model.trace_tokens(torch.rand(1, 3, 4, 32, 32), method)
    kept_a = out.index[0, :8].tolist()  # 32 patches: 16 patch tokens in A (17 with CLS), 8 merged away
    # The unmerged A tokens come first: even sequence positions, i.e. patch j at j + n_prefix.
    assert all((i + class_token) % 2 == 0 for i in kept_a), kept_a
    # With a class token they are back in position order; without, in ToMe's score order.
    assert (kept_a == sorted(kept_a)) == class_token, kept_a


def test_tome_caps_r_at_half_and_r0_is_nothing():
    assert bipartite_soft_matching(METRIC, 0) is None
    assert bipartite_soft_matching(METRIC, 10).r == 3
    assert bipartite_soft_matching(METRIC, 10, protected=1).r == 2


def test_tome_parse_r_schedules():
    assert tome_r_list(8, 4, "constant") == [8, 8, 8, 8]
    assert tome_r_list(10, 5, "decreasing") == [20, 15, 10, 5, 0]  # ToMe's (r, -1)
    assert merge_schedule(10, 1, [8, 8, 8]) == ([10, 6, 4], [6, 4, 3])  # capped at half of 9, 5, 3


def test_vid_tldr_saliency_on_a_fixed_attention_matrix():
    # Rows: one-hot (entropy 0), uniform (ln 4), two halves (ln 2) twice.
    a = torch.tensor([[1, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]])[None, None]
    # s = [0, -ln4, -ln2, -ln2] -> min-max [1, 0, .5, .5]; mean .5; token 1 is background;
    # (s - .5) / .5 = [1, -1, 0, 0] -> background zeroed.
    assert attention_saliency(a).flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    # Averaged over heads first: head 2 uniform everywhere changes the rows' entropies.
    assert attention_saliency(torch.cat([a, torch.full_like(a, 0.25)], dim=1)).shape == (1, 4, 1)


def test_vid_tldr_degenerate_all_equal_saliency_is_guarded():
    flat = torch.full((2, 3, 5, 5), 0.2)
    s = attention_saliency(flat)
    assert torch.equal(s, torch.ones(2, 5, 1))  # no NaN: every token weighs 1


def test_vid_tldr_background_sources_carry_no_mass():
    m = bipartite_soft_matching(METRIC, 2)
    weight = torch.tensor([0.0, 1.0, 1.0]).reshape(1, 3, 1)  # A token t0 is background
    x, size = merge_weighted(m, X, torch.ones(1, 6, 1), src_weight=weight)
    assert x.flatten().tolist() == [4.0, 1.0, 2.5, 5.0]  # t1 unchanged by t0
    assert size.flatten().tolist() == [1.0, 1.0, 2.0, 1.0]


def test_unbiased_probs_removes_proportional_attention():
    logits = torch.randn(2, 3, 5, 5)
    size = torch.tensor([1.0, 2, 3, 1, 4]).expand(2, 5)[..., None]
    biased = (logits + size[:, None, None, :, 0].log()).softmax(-1)
    torch.testing.assert_close(unbiased_probs(biased, size), logits.softmax(-1))


@pytest.mark.parametrize("spec", ["tome(r=0)", "tome(r=0, prop_attn=False)", "vid_tldr(r_list=[0, 0])"])
def test_no_reduction_equals_none(spec, tiny, tiny_video):
    method = build_method(spec)
    method.setup(tiny)
    torch.testing.assert_close(tiny(tiny_video, method), tiny(tiny_video), atol=1e-6, rtol=1e-6)


def test_merging_on_the_backbone_keeps_size_total_and_pools_by_size(tiny, tiny_video):
    method = build_method("tome(r=6)")
    method.setup(tiny)
    logits, counts = tiny.forward_with_info(tiny_video, method)
    assert counts[0].tolist() == [33, 27] and torch.isfinite(logits).all()


def test_tome_prop_attn_sweep_on_a_zoo_model():
    """Both settings run off the shelf on a trained model and stay far above chance (the
    default, on, was chosen on the zoo's full val splits; see ToMe's docstring)."""
    from tokbench.backbones import create_backbone
    from tokbench.benchmark.evaluate import slice_check
    from tokbench.zoo import zoo_card, zoo_checkpoint

    card = zoo_card("synth-gesture")
    model = create_backbone(card["backbone"], checkpoint=zoo_checkpoint("synth-gesture"),
                            num_classes=card["config"]["num_classes"])
    geometry = {"frames": card["data"]["frames"], "size": card["data"]["size"]}
    full = slice_check(model, "synth-gesture", geometry=geometry, clips=64)["top1"]
    for prop_attn in (False, True):
        method = build_method(f"tome(prop_attn={prop_attn})", p_ratio=0.6)
        method.setup(model)
        merged = slice_check(model, "synth-gesture", geometry=geometry, clips=64, method=method)["top1"]
        assert 2 * card["chance"] < merged <= full + 0.05, prop_attn


def test_bad_options_and_unreachable_points(tiny):
    with pytest.raises(TokbenchError, match="schedule must be one of"):
        build_method("tome(schedule='linear')")
    with pytest.raises(TokbenchError, match="r_list must be a list"):
        build_method("vid_tldr(r_list=[1.5])")
    for spec in ("tome", "vid_tldr"):
        method = build_method(spec, p_ratio=0.25)
        with pytest.raises(UnreachableError, match="cannot go below"):
            method.setup(tiny)


def _meta(config):
    """A backbone of ``config`` on the meta device (shapes, no storage): what set-up needs."""
    from tokbench.backbones.vit import VideoViT

    with torch.device("meta"):
        return VideoViT(config)


# -- FLOP matching ------------------------------------------------------------------------

@pytest.mark.parametrize("backbone", ["test_tiny", "synth_tiny"])
# r_list=[20, 7]: 20 is over test_tiny's cap of 16 merges in block 0 (half its 32 patches), so
# the cap is counted too; more than the 32 patches themselves is refused (Method.validate).
@pytest.mark.parametrize("spec", ["tome(r=5)", "tome(r=3, schedule='decreasing')", "vid_tldr(r_list=[20, 7])"])
def test_closed_form_equals_fvcore(backbone, spec):
    config = BACKBONES.get(backbone)
    method = build_method(spec)
    method.setup(_meta(config))  # as the runner does before counting (count_flops sets up its own copy)
    measured = count_flops(config, method)
    state = method.describe()
    assert measured.gflops == pytest.approx(state["closed_form_gflops"], rel=1e-12)
    assert measured.tokens_per_block == [float(n) for n in state["tokens"]]
    assert not measured.unsupported_ops


def test_front_loaded_schedule_halves_then_stops():
    assert front_loaded_r_list(1568, 0, 368, 12)[:4] == [784, 392, 24, 0]
    assert front_loaded_r_list(1568, 0, 1568, 3) == [0, 0, 0]


# Schedules of the analytic FLOP model, which leaves the matching matmul out of the
# cost; fvcore counts it (+0.1-0.5 GF), so tokbench's matched r may be one step larger.
TOME_CONSTANT = {0.9: 27, 0.8: 54, 0.7: 81, 0.6: 109, 0.5: 138, 0.4: 181, 0.3: 255, 0.2: 432}
TOME_DECREASING = {0.9: 20, 0.8: 40, 0.7: 59, 0.6: 79, 0.5: 99, 0.4: 120, 0.3: 148, 0.2: 224}


@pytest.mark.parametrize("p", [0.9, 0.5, 0.2])
def test_flop_matched_points_on_videomae_b_within_one_percent(p):
    config = BACKBONES.get("videomae_b")
    for spec, table in (("tome", TOME_CONSTANT), ("tome(schedule='decreasing')", TOME_DECREASING),
                        ("vid_tldr", None)):
        method = build_method(spec, p_ratio=p)
        method.setup(_meta(config))
        gflops = count_flops(config, method).gflops  # fvcore on the meta device
        state = method.describe()
        assert abs(gflops / state["target_gflops"] - 1) < 0.01, (spec, p, gflops)
        if table:
            assert state["r"] - table[p] in (0, 1, 2), (spec, p, state["r"])
    assert math.isclose(model_flops(config, embedded=1568, tokens=[1568] * 12) / 1e9, 180.48940416)


@pytest.mark.parametrize("spec", ["tome", "vid_tldr"])
def test_p_below_the_merging_floor_is_unreachable_on_videomae_b(spec):
    method = build_method(spec, p_ratio=0.1)
    with pytest.raises(UnreachableError, match=r"needs 15\.65 GFLOPs but merging cannot go below 2\d\.\d+"):
        count_flops(BACKBONES.get("videomae_b"), method)
