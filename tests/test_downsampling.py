"""The downsampling baselines: ``frames`` (a uniform temporal stride of tubelet slices) and
``resolution`` (a smaller clip), and the backbone's tokenization of another grid."""

import pytest
import torch
import torch.nn.functional as F

from tokbench.backbones import create_backbone, sincos_table
from tokbench.backbones.vit import _grid_table, grid_owners, grid_positions, sincos_at
from tokbench.benchmark.flops import count_flops
from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods import build_method
from tokbench.methods.downsampling import nearest_side, stride_slices
from tokbench.methods.flop_matching import model_flops

# -- frames ------------------------------------------------------------------------------

@pytest.mark.parametrize(("keep", "slices"), [(8, list(range(8))), (4, [0, 2, 4, 6]), (3, [0, 3, 6]), (2, [1, 5]),
                                              (1, [3]), (5, None), (6, None), (7, None), (0, None)])
def test_stride_slices_of_eight(keep, slices):
    # stride ceil(8 / K), centred: (7 - stride (K - 1)) // 2 slices before the first
    assert stride_slices(8, keep) == slices


@pytest.mark.parametrize(("p", "slices"), [(1.0, list(range(8))), (0.5, [0, 2, 4, 6]), (0.4, [0, 3, 6]),
                                           (0.3, [1, 5]), (0.2, [1, 5]), (0.1, [3]), (0.07, [3])])
def test_frames_rounds_p_to_whole_slices(p, slices):
    method = build_method("frames", p_ratio=p)
    method.setup(create_backbone("synth_tiny"))
    state = method.describe()
    assert state["slices"] == slices and state["p_effective"] == len(slices) / 8


@pytest.mark.parametrize(("p", "kept"), [(0.6, 5), (0.75, 6), (0.9, 7), (0.06, 0)])
def test_frames_unreachable_when_no_stride_keeps_the_rounded_count(p, kept):
    with pytest.raises(UnreachableError, match=f"P-Ratio {p:g} rounds to {kept} of 8 temporal slices.*"
                                               "reachable: P = 1, 0.5, 0.375, 0.25, 0.125"):
        build_method("frames", p_ratio=p).setup(create_backbone("synth_tiny"))


def test_frames_embeds_the_kept_slices_with_their_positions():
    """8 frames of 2 -> 4 slices of 2 x 2; P = 0.5 keeps slices 0 and 2 (stride 2)."""
    model = create_backbone("test_tiny", num_frames=8, img_size=16, class_token=False)
    video = torch.randn(2, 3, 8, 16, 16)
    method = build_method("frames", p_ratio=0.5)
    method.setup(model)
    x = model.patch_embed.proj(video).flatten(2).transpose(1, 2)  # (B, 16, D), written independently
    keep = torch.tensor([0, 1, 2, 3, 8, 9, 10, 11])
    x = x[:, keep] + sincos_table(16, 32)[keep]
    for block in model.blocks:
        x = block(x)
    expected = model.head(model.fc_norm(x.mean(1)))
    logits, counts = model.forward_with_info(video, method)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert counts.tolist() == [[8, 8]] * 2
    assert count_flops(model.config, method).gflops * 1e9 == model_flops(model.config, embedded=8, tokens=[8, 8])


# -- resolution --------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "p", "expected"), [(14, 0.5, 10), (14, 1.0, 14), (14, 0.1, 4), (6, 0.9, 6),
                                                     (6, 0.75, 5), (6, 0.5, 4), (6, 0.3, 3), (6, 0.1, 2), (6, 0.01, 0)])
def test_nearest_side(side, p, expected):
    # 224 px -> 160 px at P = 0.5 on VideoMAE (100 / 196 = 0.51 beats 81 / 196 = 0.41)
    assert nearest_side(side, p) == expected


def test_resolution_state_and_unreachable():
    method = build_method("resolution", p_ratio=0.5)
    method.setup(create_backbone("videomae_b", depth=1))
    assert method.describe() == {"side": 10, "img_size": 160, "grid": [8, 10, 10], "tokens": 800,
                                 "p_effective": 100 / 196}
    with pytest.raises(UnreachableError, match="P-Ratio 0.01 is nearer to no token"):
        build_method("resolution", p_ratio=0.01).setup(create_backbone("synth_tiny"))


def test_resolution_runs_the_backbone_on_the_resized_clip():
    model = create_backbone("synth_tiny")  # 48 px, 8 px patches: 6 x 6
    method = build_method("resolution", p_ratio=0.5)  # 4 x 4 patches: 32 px
    method.setup(model)
    video = torch.randn(2, 3, 16, 48, 48)
    small = F.interpolate(video.transpose(1, 2).reshape(32, 3, 48, 48), size=(32, 32), mode="bilinear",
                          align_corners=False, antialias=True).reshape(2, 16, 3, 32, 32).transpose(1, 2)
    x = model.patch_embed.proj(small).flatten(2).transpose(1, 2)  # (B, 8 * 4 * 4, D)
    x = x + sincos_at(grid_positions((8, 6, 6), (8, 4, 4)), 96)
    x = torch.cat([model.cls_token.expand(2, -1, -1), x], dim=1)
    for block in model.blocks:
        x = block(x)
    expected = model.head(model.norm(x)[:, 0])
    logits, counts = model.forward_with_info(video, method)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert counts.tolist() == [[129] * 4] * 2
    # FLOPs: the backbone on 128 tubelets plus the resize, 4 per output value (fvcore's bilinear rule);
    # nothing uncounted even when the grid's position table was never built before the trace
    _grid_table.cache_clear()
    count = count_flops(model.config, method)
    assert count.unsupported_ops == {}
    resize = 4 * 3 * 16 * 32 * 32
    assert count.gflops * 1e9 == model_flops(model.config, embedded=128, tokens=[129] * 4) + resize
    assert count.by_operator["_upsample_bilinear2d_aa"] * 1e9 == pytest.approx(resize)


def test_resolution_pictures_each_token_over_the_native_patches_it_covers():
    model = create_backbone("synth_tiny")
    method = build_method("resolution", p_ratio=0.5)
    method.setup(model)
    tokens = model.trace_tokens(torch.randn(1, 3, 16, 48, 48), method)
    source = tokens.source[0, 1:]  # (128, 288)
    assert (source.sum(0) == 1).all()  # every native patch in exactly one token
    # Token (0, 0, 0) of the 4 x 4 grid covers native rows/columns 0 and 1 of slice 0 (owners 0, 1, 1, 2, 3, 3).
    assert source[0].nonzero().flatten().tolist() == [0]
    assert source[1].nonzero().flatten().tolist() == [1, 2]


# -- the backbone on another grid ---------------------------------------------------------

def test_position_embedding_at_the_native_grid_is_the_table():
    model = create_backbone("test_tiny")
    assert model.position_embedding(model.config.grid) is model.pos_embed
    assert torch.equal(sincos_at(torch.arange(32, dtype=torch.float64), 32), sincos_table(32, 32))
    assert torch.equal(grid_positions((2, 4, 4), (2, 4, 4)), torch.arange(32, dtype=torch.float64))


def test_grid_positions_are_tubelet_centres_in_native_units():
    # native (1, 2, 2) -> one tubelet: centre (0.5, 0.5), flattened 0.5 * 2 + 0.5
    assert grid_positions((1, 2, 2), (1, 1, 1)).tolist() == [1.5]
    # native (2, 4, 4) -> (2, 2, 2): centres 0.5 and 2.5 along h and w; token (1, 1, 0) at (4 + 2.5) * 4 + 0.5
    assert grid_positions((2, 4, 4), (2, 2, 2))[6].item() == 26.5
    assert grid_owners((1, 6, 6), (1, 4, 4)).view(6, 6)[0].tolist() == [0, 1, 1, 2, 3, 3]


def test_a_clip_that_does_not_cut_into_tubelets_is_an_error():
    model = create_backbone("test_tiny")
    with pytest.raises(TokbenchError, match=r"does not cut into 2x8x8 tubelets"):
        model.grid_of(torch.randn(1, 3, 4, 30, 32))
