import math

import pytest
import torch
import torch.nn.functional as F

from tokbench.backbones import BACKBONES, VideoViTConfig, create_backbone, sincos_table
from tokbench.backbones.vit import attention_bias, self_attention
from tokbench.errors import TokbenchError, UnknownNameError
from tokbench.methods import IDENTITY
from tokbench.tokens import Tokens


def test_variants_have_videomae_geometry():
    for name, (dim, depth, heads) in {
        "videomae_s": (384, 12, 6), "videomae_b": (768, 12, 12), "videomae_l": (1024, 24, 16),
    }.items():
        c = BACKBONES.get(name)
        assert (c.embed_dim, c.depth, c.num_heads) == (dim, depth, heads)
        assert c.grid == (8, 14, 14) and c.num_patches == 1568 and not c.class_token
        assert c.input_shape == (3, 16, 224, 224)
    tiny = BACKBONES.get("test_tiny")
    assert tiny.num_patches == 32 and tiny.n_prefix == 1


def test_forward_shapes_and_token_counts(tiny, tiny_video):
    logits, counts = tiny.forward_with_info(tiny_video)
    assert logits.shape == (3, 10)
    assert counts.tolist() == [[33, 33]] * 3  # 32 patches + CLS in both blocks
    assert torch.equal(tiny(tiny_video), logits)


def test_sincos_table_matches_videomae_formula():
    table = sincos_table(7, 6)
    for pos in range(7):
        for j in range(6):
            angle = pos / 10000 ** (2 * (j // 2) / 6)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert table[pos, j].item() == pytest.approx(expected, abs=1e-7)


def test_linear_tubelet_embedding_equals_conv3d(tiny, tiny_video):
    pe = tiny.patch_embed
    conv = pe.proj(tiny_video).flatten(2).transpose(1, 2)  # (B, N, D) in (t, h, w) order
    torch.testing.assert_close(pe(tiny_video), conv, atol=1e-5, rtol=1e-5)
    idx = torch.tensor([[0, 5, 31]] * 3)
    torch.testing.assert_close(pe(tiny_video, idx), conv[:, [0, 5, 31]], atol=1e-5, rtol=1e-5)


def test_fused_and_explicit_attention_agree(tiny_video):
    fused = create_backbone("test_tiny")
    explicit = create_backbone("test_tiny", attn_impl="explicit")
    explicit.load_state_dict(fused.state_dict())
    torch.testing.assert_close(fused(tiny_video), explicit(tiny_video), atol=1e-5, rtol=1e-5)


def test_self_attention_returns_probs_and_keys(tiny):
    attn = tiny.blocks[0].attn
    x = torch.randn(2, 9, 32)
    out_sdpa, none = self_attention(attn, x)
    out_p, probs = self_attention(attn, x, need="probs")
    out_k, keys = self_attention(attn, x, need="keys")
    assert none is None and probs.shape == (2, 2, 9, 9) and keys.shape == (2, 2, 9, 16)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 2, 9))
    torch.testing.assert_close(out_sdpa, out_p, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_sdpa, out_k)


def test_padding_mask_gives_the_unpadded_result(tiny, tiny_video):
    """Padding tokens with mask=False must change nothing: attention ignores them as keys
    and pooling skips them."""
    clips_tokens = tiny.embed(
        __import__("tokbench.tokens", fromlist=["Clips"]).Clips(tiny_video, torch.arange(3)), IDENTITY
    )
    pad = torch.randn(3, 4, 32)
    padded = Tokens(
        x=torch.cat([clips_tokens.x, pad], 1),
        index=torch.cat([clips_tokens.index, torch.zeros(3, 4, dtype=torch.long)], 1),
        n_prefix=1,
        mask=torch.cat([torch.ones(3, 33, dtype=torch.bool), torch.zeros(3, 4, dtype=torch.bool)], 1),
    )

    def run(tokens):
        for layer in range(2):
            tokens = tiny.block_forward(layer, tokens, IDENTITY)
        return tiny.pool(tokens)

    real = run(clips_tokens)
    torch.testing.assert_close(run(padded), real, atol=1e-5, rtol=1e-5)


def test_size_weighted_pooling_and_proportional_bias(tiny):
    x = torch.randn(1, 4, 32)
    size = torch.tensor([[[1.0], [1.0], [3.0], [1.0]]])  # CLS, then 3 patches
    t = Tokens(x=x, index=torch.arange(3)[None], n_prefix=1, size=size)
    expected = tiny.fc_norm((x[0, 1] + 3 * x[0, 2] + x[0, 3]) / 5)
    torch.testing.assert_close(tiny.pool(t)[0], expected)
    bias = attention_bias(t, proportional=True)
    torch.testing.assert_close(bias[0, 0, 0], size[0, :, 0].log())
    assert attention_bias(t, proportional=False) is None


def test_input_shape_error_names_expected_shape(tiny):
    with pytest.raises(TokbenchError, match=r"expected \(B, 3, 4, 32, 32\)"):
        tiny(torch.randn(1, 3, 8, 32, 32))


def test_config_validation_and_overrides():
    with pytest.raises(TokbenchError, match="img_size must be a multiple of patch_size"):
        VideoViTConfig(img_size=30, patch_size=8)
    with pytest.raises(TokbenchError, match="unknown backbone option 'widht'"):
        create_backbone("test_tiny", widht=3)
    with pytest.raises(UnknownNameError, match="Did you mean 'videomae_b'"):
        create_backbone("videomae-b")
    m = create_backbone("test_tiny", num_classes=7, init_values=1e-5, depth=3)
    assert m.head.out_features == 7 and len(m.blocks) == 3
    assert torch.allclose(m.blocks[0].ls1.gamma, torch.full((32,), 1e-5))


def test_layer_scale_is_used(tiny_video):
    m = create_backbone("test_tiny", init_values=1.0)
    before = m(tiny_video)
    with torch.no_grad():
        for block in m.blocks:
            block.ls1.gamma.zero_()
            block.ls2.gamma.zero_()
    after = m(tiny_video)
    assert not torch.allclose(before, after)
    # With both gammas zero the blocks are identities: logits come from the embedding alone.
    x = m.embed(__import__("tokbench.tokens", fromlist=["Clips"]).Clips(tiny_video, torch.arange(3)), IDENTITY).x
    torch.testing.assert_close(after, m.head(m.fc_norm(x[:, 1:].mean(1))))


def test_cls_token_pooling_variant(tiny_video):
    m = create_backbone("test_tiny", global_pool="token")
    assert m(tiny_video).shape == (3, 10)
    with pytest.raises(TokbenchError, match="needs class_token=True"):
        create_backbone("videomae_s", global_pool="token")


def test_mean_pool_no_cls_matches_manual_videomae_forward():
    """A manual VideoMAE forward (Conv3d, + sin-cos, timm blocks, mean, fc_norm, head)."""
    m = create_backbone("test_tiny", class_token=False)
    v = torch.randn(2, 3, 4, 32, 32)
    x = m.patch_embed.proj(v).flatten(2).transpose(1, 2) + sincos_table(32, 32)
    for block in m.blocks:
        x = block(x)  # timm's own Block.forward
    expected = m.head(m.fc_norm(x.mean(1)))
    torch.testing.assert_close(m(v), expected, atol=1e-5, rtol=1e-5)


def test_drop_path_only_in_training():
    m = create_backbone("test_tiny", drop_path_rate=0.5)
    v = torch.randn(2, 3, 4, 32, 32)
    torch.testing.assert_close(m(v), m(v))  # eval: deterministic
    m.train()
    torch.manual_seed(0)
    a = m(v)
    torch.manual_seed(1)
    assert not torch.allclose(a, m(v))


def test_sdpa_is_what_runs_by_default(tiny, tiny_video, monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    tiny(tiny_video)
    assert len(calls) == 2  # one per block
