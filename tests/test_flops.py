"""FLOP counting: exact integers against closed forms, the published VideoMAE numbers,
and a cross-check with torch.utils.flop_counter."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tokbench.backbones import BACKBONES, create_backbone
from tokbench.benchmark import flops as flops_mod
from tokbench.benchmark.flops import FlopCountAnalysis, cached_flops, count_flops, sdpa_flop_jit
from tokbench.errors import TokbenchError
from tokbench.methods import SelectionMethod, build_method, keep_count


def closed_form(config, kept: int, *, embedded: int) -> int:
    """MACs of the VideoViT at ``kept`` patch tokens (the analytic model, for any width):
    per block qkv 3ND^2 + QK^T N^2 D + AV N^2 D + proj ND^2 + MLP 2*N*D*hidden + 2 LN 5ND;
    patch embedding (C*t*p*p)*D per embedded tubelet; fc_norm 5D; head D*classes."""
    D, hidden = config.embed_dim, int(config.embed_dim * config.mlp_ratio)
    N = kept + config.n_prefix
    block = 4 * N * D * D + 2 * N * N * D + 2 * N * D * hidden + 10 * N * D
    tubelet = config.in_chans * config.tubelet_size * config.patch_size**2
    return embedded * tubelet * D + config.depth * block + 5 * D + D * config.num_classes


class _ScoreByNorm(SelectionMethod):
    """Selects after embedding, so every tubelet is embedded (the 'embed all' convention)."""

    name = "by_norm"

    def scores(self, clips, tokens, num_patches):
        return tokens.x[:, tokens.n_prefix:].norm(dim=-1)


def test_sdpa_handle_counts_qk_and_av_exactly():
    class Attn(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    fca = FlopCountAnalysis(Attn(), (q, k, v)).set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_jit)
    assert fca.total() == 2 * 3 * 5 * 7 * 4 + 2 * 3 * 5 * 7 * 6  # QK^T + AV
    # fvcore alone counts nothing for it (the gap the handle closes):
    plain = FlopCountAnalysis(Attn(), (q, k, v))
    plain.unsupported_ops_warnings(False)
    assert plain.total() == 0


@pytest.mark.parametrize("p", [1.0, 0.5, 0.25])
def test_tiny_counts_equal_closed_form(p):
    config = BACKBONES.get("test_tiny")
    kept = keep_count(32, p)
    random = count_flops(config, build_method("random", p_ratio=p))
    assert round(random.gflops * 1e9) == closed_form(config, kept, embedded=kept)
    assert random.tokens_per_block == [kept + 1] * 2 and random.unsupported_ops == {}
    by_norm = count_flops(config, _ScoreByNorm(p_ratio=p))
    assert round(by_norm.gflops * 1e9) == closed_form(config, kept, embedded=32)


def test_fused_and_explicit_attention_count_the_same():
    config = BACKBONES.get("test_tiny")
    explicit = config.__class__(**{**config.to_dict(), "attn_impl": "explicit"})
    method = build_method("random", p_ratio=0.5)
    fused_count, explicit_count = count_flops(config, method), count_flops(explicit, method)
    assert fused_count.gflops == explicit_count.gflops
    assert "scaled_dot_product_attention" in fused_count.by_operator
    assert "matmul" in explicit_count.by_operator


def test_cross_check_with_torch_flop_counter():
    """FlopCounterMode counts 2 FLOPs per multiply-add and skips LayerNorm; on CPU it needs a
    formula for the CPU flash-attention kernel (pytorch#195460)."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def sdpa_cpu(q, k, v, *args, out_shape=None, **kwargs):
        return sdpa_flop_count(q, k, v)  # the mapping receives shapes

    model = create_backbone("test_tiny")
    method = build_method("random", p_ratio=0.5)
    mapping = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu}
    counter = FlopCounterMode(display=False, custom_mapping=mapping)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, 4, 32, 32), method)
    ours = count_flops(model.config, method)
    without_norms = ours.gflops - ours.by_operator["layer_norm"]
    assert counter.get_total_flops() / 2 == pytest.approx(without_norms * 1e9, abs=0.5)


# The analytic MAC model: (K, F embed all 1568, F embed only kept) for VideoMAE ViT-B.
VITB_TABLE = {
    0.9: (1411, 158.52, 158.33), 0.8: (1254, 137.46, 137.09), 0.7: (1098, 117.43, 116.88),
    0.6: (941, 98.18, 97.44), 0.5: (784, 79.84, 78.92), 0.4: (627, 62.41, 61.30),
    0.3: (470, 45.88, 44.59), 0.2: (314, 30.37, 28.89), 0.1: (157, 15.65, 13.99),
}


def test_videomae_b_full_model_is_180_5_gflops():
    count = count_flops(BACKBONES.get("videomae_b"), build_method("none"))
    assert count.gflops == pytest.approx(180.49, abs=0.2)  # VideoMAE paper: 180 per view
    assert count.unsupported_ops == {}
    assert count.by_operator["scaled_dot_product_attention"] == pytest.approx(45.3, abs=0.05)
    assert count.params == pytest.approx(86.5e6, rel=0.01)  # "87M"


@pytest.mark.parametrize("p", sorted(VITB_TABLE))
def test_videomae_b_table_both_embedding_conventions(p):
    K, embed_all, embed_kept = VITB_TABLE[p]
    config = BACKBONES.get("videomae_b")
    random = count_flops(config, build_method("random", p_ratio=p))
    assert random.tokens_per_block[0] == K
    assert random.gflops == pytest.approx(embed_kept, abs=0.2)
    assert count_flops(config, _ScoreByNorm(p_ratio=p)).gflops == pytest.approx(embed_all, abs=0.2)


@pytest.mark.parametrize("name, published", [("videomae_s", 57.0), ("videomae_l", 597.2)])
def test_other_videomae_sizes(name, published):
    assert count_flops(BACKBONES.get(name), build_method("none")).gflops == pytest.approx(published, abs=0.2)


def test_cache_is_used_and_keyed_by_p(monkeypatch, tmp_path):
    config = BACKBONES.get("test_tiny")
    first = cached_flops(config, build_method("random", p_ratio=0.5), cache_dir=tmp_path)
    assert (tmp_path / "flops.json").exists()

    def fail(*a, **k):
        raise AssertionError("counted again instead of reading the cache")

    monkeypatch.setattr(flops_mod, "count_flops", fail)
    assert cached_flops(config, build_method("random", p_ratio=0.5), cache_dir=tmp_path) == first
    with pytest.raises(AssertionError, match="counted again"):
        cached_flops(config, build_method("random", p_ratio=0.25), cache_dir=tmp_path)


def test_cache_shares_the_trunk_across_class_counts(monkeypatch, tmp_path):
    """Models that differ only in their head share one trace; the head's multiply-adds
    (embed_dim x classes) and parameters are added exactly."""
    import dataclasses

    base = BACKBONES.get("synth_tiny")
    exact = {c: count_flops(dataclasses.replace(base, num_classes=c), build_method("tome", p_ratio=0.7))
             for c in (8, 30)}
    cached = cached_flops(dataclasses.replace(base, num_classes=8), build_method("tome", p_ratio=0.7),
                          cache_dir=tmp_path)
    monkeypatch.setattr(flops_mod, "count_flops", lambda *a, **k: pytest.fail("traced again"))
    again = cached_flops(dataclasses.replace(base, num_classes=30), build_method("tome", p_ratio=0.7),
                         cache_dir=tmp_path)
    for c, got in ((8, cached), (30, again)):
        assert got.gflops == pytest.approx(exact[c].gflops, rel=1e-12) and got.params == exact[c].params
        assert got.by_operator["linear"] == pytest.approx(exact[c].by_operator["linear"], rel=1e-12)
    assert again.gflops - cached.gflops == pytest.approx(96 * 22 / 1e9, rel=1e-9)


def test_damaged_cache_is_rebuilt(tmp_path):
    (tmp_path / "flops.json").write_text("{not json")
    count = cached_flops(BACKBONES.get("test_tiny"), build_method("none"), cache_dir=tmp_path)
    assert count.gflops > 0 and "fvcore+sdpa" in (tmp_path / "flops.json").read_text()


class _Brightness(SelectionMethod):
    """Keeps more tokens for brighter clips: its cost depends on content."""

    name = "brightness"
    scores_need_tokens = False
    cost_depends_on_content = True

    def before_embed(self, clips, num_patches):
        k = 8 if clips.video.mean() > 0 else 24
        return torch.arange(k, device=clips.video.device).expand(clips.video.shape[0], -1)

    def scores(self, clips, tokens, num_patches):  # unused: before_embed is overridden
        raise AssertionError


def test_content_dependent_cost_is_averaged_per_clip():
    config = BACKBONES.get("test_tiny")
    method = _Brightness(p_ratio=0.5)
    with pytest.raises(TokbenchError, match="depend on content"):
        count_flops(config, method)
    videos = torch.stack([torch.ones(3, 4, 32, 32), -torch.ones(3, 4, 32, 32)])
    count = count_flops(config, method, videos=videos)
    per_clip = [closed_form(config, 8, embedded=8), closed_form(config, 24, embedded=24)]
    assert count.clips == 2
    assert count.gflops * 1e9 == pytest.approx(sum(per_clip) / 2, abs=1)
    # E[F(K)] != F(E[K]): the mean cost exceeds the cost of the mean count (quadratic term).
    assert count.gflops * 1e9 > closed_form(config, 16, embedded=16)
    assert count.gflops_std * 1e9 == pytest.approx(abs(per_clip[1] - per_clip[0]) / 2, abs=1)
    assert count.tokens_per_block == [17.0, 17.0]
    assert math.isfinite(count.gflops)


def _count_on(device: str, name: str, method) -> float:
    from tokbench.backbones.vit import VideoViT
    from tokbench.benchmark.flops import count_flops as count

    config = BACKBONES.get(name)
    with torch.device(device):
        backbone = VideoViT(config)
    return count(config, method, backbone=backbone).gflops


@pytest.mark.parametrize("p", [1.0, 0.3])
def test_meta_device_count_equals_real_tensor_count(p):
    """Counting on the meta device (no arithmetic) must see the same ops as a real run."""
    method = build_method("random", p_ratio=p)
    assert _count_on("meta", "test_tiny", method) == _count_on("cpu", "test_tiny", method)


@pytest.mark.slow
def test_meta_device_count_equals_real_tensor_count_videomae_b():
    method = build_method("random", p_ratio=0.5)
    assert _count_on("meta", "videomae_b", method) == _count_on("cpu", "videomae_b", method)
