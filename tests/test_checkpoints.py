"""Checkpoint loading: Hugging Face and original VideoMAE layouts give the same logits as
their reference implementations; bad checkpoints raise one-line CheckpointErrors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tokbench.backbones.checkpoints import config_overrides_from_checkpoint
from tokbench.backbones.factory import create_backbone
from tokbench.errors import CheckpointError

# test_tiny geometry: 4x32x32 clips, 2x8x8 tubelets -> 32 tokens, width 32, depth 2, 2 heads.
TINY = dict(num_frames=4, img_size=32, tubelet_size=2, patch_size=8, embed_dim=32, depth=2, num_heads=2)
ATOL = 1e-5


def _video(seed: int = 1, batch: int = 2) -> torch.Tensor:
    """(B, C, T, H, W) random clip."""
    return torch.randn(batch, 3, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------- Hugging Face


@pytest.fixture(scope="module")
def hf_model():
    transformers = pytest.importorskip("transformers")
    config = transformers.VideoMAEConfig(
        image_size=32, patch_size=8, num_channels=3, num_frames=4, tubelet_size=2, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, num_labels=5,
        qkv_bias=True, use_mean_pooling=True, id2label={i: f"class_{i}" for i in range(5)},
    )
    model = transformers.VideoMAEForVideoClassification(config).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # every parameter random (LayerNorm weights around 1), so any mix-up shows
        for name, p in model.named_parameters():
            mean = 1.0 if "layernorm" in name or "fc_norm.weight" in name else 0.0
            p.copy_(mean + 0.2 * torch.randn(p.shape, generator=generator))
    return model


def _hf_logits(hf_model, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return hf_model(pixel_values=video.permute(0, 2, 1, 3, 4)).logits  # HF: (B, T, C, H, W)


def _logits(model, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(video)


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_hf_folder_matches_transformers(hf_model, tmp_path, safe):
    hf_model.save_pretrained(tmp_path, safe_serialization=safe)
    model = create_backbone("test_tiny", checkpoint=tmp_path)  # test_tiny: CLS token, 10 classes
    c = model.config
    assert (c.class_token, c.global_pool, c.num_classes, c.embed_dim, c.depth) == (False, "avg", 5, 32, 2)
    assert (c.mlp_ratio, c.norm_eps, c.fc_norm_eps, c.init_values) == (2.0, 1e-12, 1e-5, None)
    video = _video()
    expected = _hf_logits(hf_model, video)
    assert expected.abs().max() > 0.1  # not a degenerate comparison
    torch.testing.assert_close(_logits(model, video), expected, atol=ATOL, rtol=0)


def test_hf_weights_file_alone(hf_model, tmp_path):
    hf_model.save_pretrained(tmp_path)
    model = create_backbone(
        "test_tiny", checkpoint=tmp_path / "model.safetensors", class_token=False, num_classes=5,
        mlp_ratio=2.0, norm_eps=1e-12, fc_norm_eps=1e-5,
    )
    video = _video(2)
    torch.testing.assert_close(_logits(model, video), _hf_logits(hf_model, video), atol=ATOL, rtol=0)


def test_hf_legacy_q_bias_v_bias_names(hf_model, tmp_path):
    """transformers 4.x checkpoints (the MCG-NJU hub ports) name the biases q_bias / v_bias."""
    from safetensors.torch import save_file

    renamed = {
        k.replace("query.bias", "q_bias").replace("value.bias", "v_bias"): v.contiguous()
        for k, v in hf_model.state_dict().items()
    }
    assert any(k.endswith("attention.attention.q_bias") for k in renamed)
    save_file(renamed, str(tmp_path / "legacy.safetensors"))
    model = create_backbone("test_tiny", checkpoint=tmp_path / "legacy.safetensors", class_token=False,
                            num_classes=5, mlp_ratio=2.0, norm_eps=1e-12, fc_norm_eps=1e-5)
    video = _video(3)
    torch.testing.assert_close(_logits(model, video), _hf_logits(hf_model, video), atol=ATOL, rtol=0)


def test_hf_config_without_mean_pooling_is_refused(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.VideoMAEConfig(use_mean_pooling=False).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="only mean pooling is supported"):
        create_backbone("test_tiny", checkpoint=tmp_path)


def test_hf_config_other_model_type_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "vit"}')
    with pytest.raises(CheckpointError, match="model_type 'vit' is not supported"):
        config_overrides_from_checkpoint(tmp_path)


# --------------------------------------------------------------------------- original VideoMAE


def _sinusoid_table(n_position: int, d_hid: int) -> torch.Tensor:
    """VideoMAE's ``get_sinusoid_encoding_table`` (NumPy, float64), (1, N, D)."""
    angles = np.array([[pos / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)] for pos in range(n_position)])
    angles[:, 0::2] = np.sin(angles[:, 0::2])
    angles[:, 1::2] = np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float).unsqueeze(0)


def _videomae_forward(sd: dict, video: torch.Tensor, *, depth: int, heads: int, eps: float = 1e-6) -> torch.Tensor:
    """Reference forward of MCG-NJU/VideoMAE ``modeling_finetune.VisionTransformer`` (mean pooling)."""
    w = sd["patch_embed.proj.weight"]
    x = F.conv3d(video, w, sd["patch_embed.proj.bias"], stride=w.shape[2:]).flatten(2).transpose(1, 2)
    B, N, D = x.shape
    x = x + _sinusoid_table(N, D)

    def norm(t, name):
        return F.layer_norm(t, (D,), sd[f"{name}.weight"], sd[f"{name}.bias"], eps)

    for i in range(depth):
        p = f"blocks.{i}."
        q_bias, v_bias = sd[p + "attn.q_bias"], sd[p + "attn.v_bias"]
        qkv_bias = torch.cat((q_bias, torch.zeros_like(v_bias), v_bias))
        qkv = F.linear(norm(x, p + "norm1"), sd[p + "attn.qkv.weight"], qkv_bias)
        q, k, v = qkv.reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
        attn = ((q * (D // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        out = F.linear((attn @ v).transpose(1, 2).reshape(B, N, -1), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        x = x + sd[p + "gamma_1"] * out
        h = F.gelu(F.linear(norm(x, p + "norm2"), sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]))
        x = x + sd[p + "gamma_2"] * F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
    return F.linear(norm(x.mean(1), "fc_norm"), sd["head.weight"], sd["head.bias"])


def _videomae_state_dict(*, dim: int = 32, depth: int = 2, classes: int = 10, seed: int = 0) -> dict:
    """Random state dict in the original VideoMAE fine-tuning layout (qkv_bias, init_values > 0)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape, mean=0.0):
        return mean + 0.2 * torch.randn(*shape, generator=g)

    sd = {"patch_embed.proj.weight": rnd(dim, 3, 2, 8, 8), "patch_embed.proj.bias": rnd(dim)}
    for i in range(depth):
        p = f"blocks.{i}."
        sd |= {
            p + "gamma_1": rnd(dim, mean=0.5), p + "gamma_2": rnd(dim, mean=0.5),
            p + "norm1.weight": rnd(dim, mean=1.0), p + "norm1.bias": rnd(dim),
            p + "attn.q_bias": rnd(dim), p + "attn.v_bias": rnd(dim),
            p + "attn.qkv.weight": rnd(3 * dim, dim),
            p + "attn.proj.weight": rnd(dim, dim), p + "attn.proj.bias": rnd(dim),
            p + "norm2.weight": rnd(dim, mean=1.0), p + "norm2.bias": rnd(dim),
            p + "mlp.fc1.weight": rnd(4 * dim, dim), p + "mlp.fc1.bias": rnd(4 * dim),
            p + "mlp.fc2.weight": rnd(dim, 4 * dim), p + "mlp.fc2.bias": rnd(dim),
        }
    return sd | {"fc_norm.weight": rnd(dim, mean=1.0), "fc_norm.bias": rnd(dim),
                 "head.weight": rnd(classes, dim), "head.bias": rnd(classes)}


def _tiny_videomae(checkpoint, **kw):
    return create_backbone("test_tiny", checkpoint=checkpoint, class_token=False, init_values=0.1, **kw)


def test_original_videomae_matches_reference(tmp_path):
    sd = _videomae_state_dict()
    torch.save({"model": sd, "epoch": 3}, tmp_path / "checkpoint.pth")
    model = _tiny_videomae(tmp_path / "checkpoint.pth")
    video = _video()
    expected = _videomae_forward(sd, video, depth=2, heads=2)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(_logits(model, video), expected, atol=ATOL, rtol=0)


def test_original_videomae_with_training_args_and_prefix(tmp_path):
    """VideoMAE's trainer saves its argparse namespace too; DeepSpeed adds ``module.``."""
    import argparse

    sd = _videomae_state_dict(seed=1)
    torch.save({"module": {f"module.{k}": v for k, v in sd.items()}, "args": argparse.Namespace(lr=1e-3)},
               tmp_path / "ds.pt")
    video = _video(4)
    torch.testing.assert_close(_logits(_tiny_videomae(tmp_path / "ds.pt"), video),
                               _videomae_forward(sd, video, depth=2, heads=2), atol=ATOL, rtol=0)


def test_fixed_pos_embed_is_dropped_and_learned_one_refused(tmp_path):
    sd = _videomae_state_dict()
    torch.save(sd | {"pos_embed": _sinusoid_table(32, 32)}, tmp_path / "fixed.pth")
    _tiny_videomae(tmp_path / "fixed.pth")
    torch.save(sd | {"pos_embed": _sinusoid_table(32, 32) + 0.01}, tmp_path / "learned.pth")
    with pytest.raises(CheckpointError, match="learned position embeddings are not supported"):
        _tiny_videomae(tmp_path / "learned.pth")


def test_tokbench_state_dict_round_trip(tmp_path):
    source = create_backbone("test_tiny", num_classes=7)
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "own.ckpt")
    loaded = create_backbone("test_tiny", checkpoint=tmp_path / "own.ckpt", num_classes=7)
    video = _video(5)
    torch.testing.assert_close(_logits(loaded, video), _logits(source.eval(), video), atol=0, rtol=0)


# --------------------------------------------------------------------------- errors


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*nope.pth"):
        create_backbone("test_tiny", checkpoint=tmp_path / "nope.pth")


@pytest.mark.parametrize("name", ["junk.pth", "junk.safetensors"])
def test_corrupt_file(tmp_path, name):
    (tmp_path / name).write_bytes(np.random.default_rng(0).bytes(256))
    with pytest.raises(CheckpointError, match=f"cannot read checkpoint .*{name}: ") as info:
        create_backbone("test_tiny", checkpoint=tmp_path / name)
    assert "\n" not in str(info.value)


def test_other_width_names_key_and_shapes(tmp_path):
    torch.save(_videomae_state_dict(dim=64), tmp_path / "wide.pth")
    with pytest.raises(CheckpointError) as info:
        _tiny_videomae(tmp_path / "wide.pth")
    message = str(info.value)
    assert "does not fit backbone test_tiny (embed_dim=32, depth=2" in message
    assert "shape mismatch: patch_embed.proj.weight checkpoint [64, 3, 2, 8, 8] vs model [32, 3, 2, 8, 8]" in message
    assert "(+" in message and "\n" not in message


def test_unknown_key(tmp_path):
    sd = create_backbone("test_tiny").state_dict()
    torch.save(sd | {"blocks.0.extra.weight": torch.zeros(3)}, tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match=r"unknown keys: blocks\.0\.extra\.weight$"):
        create_backbone("test_tiny", checkpoint=tmp_path / "extra.pth")


def test_head_mismatch_hints_num_classes(tmp_path):
    torch.save(_videomae_state_dict(classes=5), tmp_path / "five.pth")
    with pytest.raises(CheckpointError, match=r"head\.weight checkpoint \[5, 32\] vs model \[10, 32\].*pass num_classes=5"):
        _tiny_videomae(tmp_path / "five.pth")
    _tiny_videomae(tmp_path / "five.pth", num_classes=5)


def test_layerscale_and_cls_token_hints(tmp_path):
    torch.save(_videomae_state_dict(), tmp_path / "ls.pth")
    with pytest.raises(CheckpointError) as info:
        create_backbone("test_tiny", checkpoint=tmp_path / "ls.pth")  # CLS token, no LayerScale
    message = str(info.value)
    assert "missing keys: cls_token" in message and "unknown keys: blocks.0.ls1.gamma" in message
    assert "pass init_values (any non-zero value)" in message and "pass class_token=False" in message
