"""LookWhen: uniqueness target, selector tiling, top-K gather, extractor loading, FLOPs,
distillation targets, and the shipped artifacts against their cards."""

import dataclasses
import math

import pytest
import torch
from method_settings import ASSETS
from torch import nn

from tokbench.backbones import BACKBONES, create_backbone
from tokbench.benchmark.flops import count_flops
from tokbench.errors import CheckpointError, TokbenchError
from tokbench.methods import build_method, keep_count, top_k_indices
from tokbench.methods.lookwhen import LookWhenSelector, load_extractor, uniqueness
from tokbench.train.lookwhen import (
    Distiller,
    GivenTokens,
    align_to_tubelets,
    distillation_loss,
    distillation_targets,
    topk_overlap,
)
from tokbench.weights import save_checkpoint

SELECTOR = str(ASSETS / "lookwhen_selector_test_tiny.safetensors")


def test_uniqueness_on_a_hand_made_feature_set():
    # Four unit features: two identical, one orthogonal, one at (0.6, 0.8).
    f = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]]])
    d02, d03, d23 = math.sqrt(2), math.sqrt(0.4 ** 2 + 0.8 ** 2), math.sqrt(0.6 ** 2 + 0.2 ** 2)
    torch.testing.assert_close(uniqueness(f), torch.tensor([[0.0, 0.0, d23, d23]]))
    # k = 2: the mean distance to the two nearest others.
    expected = torch.tensor([[(0 + d03) / 2, (0 + d03) / 2, (d23 + d02) / 2, (d23 + d03) / 2]])
    torch.testing.assert_close(uniqueness(f, k=2), expected)
    # Features are l2-normalised first: scaling a feature changes nothing.
    torch.testing.assert_close(uniqueness(f * torch.tensor([[[3.0], [1.0], [7.0], [0.5]]])), uniqueness(f))
    with pytest.raises(TokbenchError, match="k must be in"):
        uniqueness(f, k=4)


def test_selector_scores_tile_the_full_grid():
    config = BACKBONES.get("test_tiny")  # 2 x 4 x 4 tokens; selector on 16 px: 2 x 2 x 2
    selector = LookWhenSelector(config, depth=1, scale=2)
    assert selector.r == 2

    class Marked(nn.Module):  # low-res token j's q-th score = 10 j + q
        def forward(self, x):
            j = torch.arange(x.shape[1], dtype=x.dtype)[:, None]
            return (10 * j + torch.arange(4, dtype=x.dtype)).expand(x.shape[0], -1, -1)

    selector.head = Marked()
    scores = selector(torch.randn(2, 3, 4, 32, 32))
    assert scores.shape == (2, 32)
    grid = scores[0].reshape(2, 4, 4)
    for t in range(2):
        for i in range(4):
            for j in range(4):
                low = t * 4 + (i // 2) * 2 + (j // 2)
                assert grid[t, i, j] == 10 * low + (i % 2) * 2 + (j % 2)


def test_selector_rejects_geometry_it_cannot_tile():
    config = BACKBONES.get("test_tiny")
    with pytest.raises(TokbenchError, match="not a multiple"):
        LookWhenSelector(config, depth=1, scale=3)
    with pytest.raises(TokbenchError, match="depth"):
        LookWhenSelector(config, depth=5, scale=2)


def test_lookwhen_embeds_the_selectors_top_k(tiny, tiny_video):
    method = build_method(f"lookwhen(selector={SELECTOR!r}, extractor='backbone')", p_ratio=0.25)
    method.setup(tiny)
    expected = top_k_indices(method._net(tiny_video), keep_count(32, 0.25))
    logits, counts = tiny.forward_with_info(tiny_video, method)
    assert (counts == 1 + 8).all()
    torch.testing.assert_close(logits, tiny(tiny_video, GivenTokens(expected)))


def test_lookwhen_flops_are_selector_plus_extractor():
    from fvcore.nn import FlopCountAnalysis

    from tokbench.benchmark.flops import _with_handles

    config = BACKBONES.get("test_tiny")
    for p in (0.25, 0.5):
        method = build_method(f"lookwhen(selector={SELECTOR!r}, extractor='backbone')", p_ratio=p)
        total = count_flops(config, method).gflops
        extractor = count_flops(config, build_method("random", p_ratio=p)).gflops  # K kept tubelets embedded
        selector = LookWhenSelector.from_file(SELECTOR, config)
        alone = _with_handles(FlopCountAnalysis(selector, (torch.zeros(1, *config.input_shape),))).total() / 1e9
        assert alone > 0
        assert total == pytest.approx(extractor + alone, rel=1e-9)


def test_extractor_file_replaces_the_backbone_weights(tiny, tiny_video, tmp_path):
    other = create_backbone("test_tiny")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    save_checkpoint(other, tmp_path / "ext.safetensors", {})
    method = build_method(f"lookwhen(selector={SELECTOR!r}, extractor={str(tmp_path / 'ext.safetensors')!r})",
                          p_ratio=0.5)
    method.setup(tiny)
    model = method.model(tiny)
    assert model is not tiny
    torch.testing.assert_close(model(tiny_video, method), other(tiny_video, method))
    # The backbone itself is untouched.
    assert not torch.equal(model.blocks[0].mlp.fc1.weight, tiny.blocks[0].mlp.fc1.weight)
    bad = create_backbone("test_tiny", embed_dim=64, num_heads=2)
    save_checkpoint(bad, tmp_path / "bad.safetensors", {})
    with pytest.raises(CheckpointError, match="not an extractor"):
        load_extractor(tmp_path / "bad.safetensors", tiny)


def test_cost_only_sweeps_get_an_untrained_selector_and_real_datasets_need_files(tiny, tiny_video):
    config = BACKBONES.get("test_tiny")
    method = build_method("lookwhen", p_ratio=0.5)
    method.bind(dataset=None)  # cost only: the default selector shape, untrained, before the backbone
    method.setup(tiny)
    assert method.model(tiny) is tiny and method.describe()["selector"].startswith("untrained")
    assert tiny(tiny_video, method).shape == (3, 10)
    trained = build_method(f"lookwhen(selector={SELECTOR!r}, extractor='backbone')", p_ratio=0.5)
    assert count_flops(config, method).gflops == pytest.approx(count_flops(config, trained).gflops)
    with pytest.raises(CheckpointError, match="no shipped lookwhen artifact for 'kinetics400'"):
        build_method("lookwhen", p_ratio=0.5).bind(dataset="kinetics400")


def test_align_to_tubelets_averages_frame_pairs():
    patch = torch.arange(4.0).reshape(1, 4, 1, 1, 1).expand(1, 4, 2, 2, 3)  # frame t has value t
    frame = torch.arange(4.0).reshape(1, 4, 1).expand(1, 4, 3)
    p, f = align_to_tubelets(patch, frame, (2, 2, 2))
    assert p.shape == (1, 8, 3) and f.shape == (1, 2, 3)
    assert torch.equal(p[0, :, 0], torch.tensor([0.5] * 4 + [2.5] * 4))
    assert torch.equal(f[0, :, 0], torch.tensor([0.5, 2.5]))
    with pytest.raises(TokbenchError, match="tubelets"):
        align_to_tubelets(patch, frame, (3, 2, 2))


def test_distillation_targets_centre_on_the_time_mean():
    torch.manual_seed(0)
    feats = {"video": torch.randn(5, 8), "patch": torch.randn(5, 2 * 4, 3).half(), "frame": torch.randn(5, 2, 3)}
    stats = {"patch_mean": torch.zeros(3), "patch_std": torch.full((3,), 2.0),
             "frame_mean": torch.ones(3), "frame_std": torch.ones(3)}
    t = distillation_targets(feats, stats)
    patch = t["patch_target"].float().reshape(5, 2, 4, 3)
    torch.testing.assert_close(patch.mean(1), torch.zeros(5, 4, 3), atol=1e-3, rtol=0)
    expected = feats["patch"].float().reshape(5, 2, 4, 3) / 2
    torch.testing.assert_close(patch[:, 0], (expected[:, 0] - expected[:, 1]) / 2, atol=1e-3, rtol=0)
    torch.testing.assert_close(t["frame_target"].mean(1), torch.zeros(5, 3), atol=1e-6, rtol=0)
    torch.testing.assert_close(t["video_image"], (feats["frame"] - 1).mean(1))
    assert torch.equal(t["video_teacher"], feats["video"])


def test_distiller_outputs_and_loss(tiny, tiny_video):
    distiller = Distiller(tiny, image_dim=5)
    index = torch.tensor([[0, 1, 2, 3], [0, 5, 20, 31], [16, 17, 18, 19]])  # clip 2 sees only time step 1
    out = distiller(tiny_video, index)
    assert out["pooled"].shape == (3, 32) and out["patch"].shape == (3, 4, 5) and out["frame"].shape == (3, 2, 5)
    assert out["frame_seen"].tolist() == [[True, False], [True, True], [False, True]]
    batch = {"video_teacher": out["pooled"].detach(), "video_image": out["video_image"].detach(),
             "patch_target": torch.zeros(3, 32, 5), "frame_target": out["frame"].detach()}
    # Only the patch term differs from the outputs: the loss is its mean square.
    loss = distillation_loss(out, batch, video_var=1.0)
    torch.testing.assert_close(loss, (out["patch"] ** 2).mean())
    loss.backward()
    assert distiller.patch_head[1].weight.grad is not None


def test_topk_overlap():
    target = torch.tensor([[4.0, 3.0, 2.0, 1.0]])
    assert topk_overlap(target, target, 0.5) == 1.0
    assert topk_overlap(-target, target, 0.5) == 0.0


ZOO = ["synth-appearance", "synth-egocentric", "synth-gesture", "synth-motion", "synth-multilabel", "synth-sequence"]


@pytest.mark.parametrize("dataset", ZOO)
def test_shipped_lookwhen_reproduces_its_card(dataset):
    """The shipped selector + extractor reload and give the card's accuracy on its val slice."""
    from tokbench.benchmark.evaluate import slice_check
    from tokbench.weights import read_card
    from tokbench.zoo import zoo_artifact, zoo_card, zoo_checkpoint

    card = read_card(zoo_artifact("lookwhen", dataset, suffix="extractor"))
    check = card["check"]
    backbone_card = zoo_card(dataset)
    teacher = create_backbone(backbone_card["backbone"], checkpoint=zoo_checkpoint(dataset),
                              num_classes=backbone_card["config"]["num_classes"])
    method = build_method("lookwhen", p_ratio=check["p_ratio"])
    method.bind(dataset=dataset)
    method.setup(teacher)
    geometry = {"frames": backbone_card["data"]["frames"], "size": backbone_card["data"]["size"]}
    again = slice_check(method.model(teacher), dataset, geometry=geometry, clips=check["clips"], method=method)
    metric = card["metric"]
    # fp16 weights re-read as fp32, as at training time: the same numbers up to a clip or two.
    assert again[metric] == pytest.approx(check[metric], abs=2 / check["clips"])


@pytest.mark.parametrize("dataset", ZOO)
def test_shipped_image_teacher_reloads_with_its_card_accuracy(dataset):
    from tokbench.benchmark.evaluate import evaluate
    from tokbench.data import create_dataset
    from tokbench.train.image_teacher import FrameSet, load_image_teacher
    from tokbench.weights import read_card
    from tokbench.zoo import zoo_artifact

    card = read_card(zoo_artifact("image-teacher", dataset))
    teacher = load_image_teacher("zoo", dataset=dataset)
    frames = FrameSet(create_dataset(dataset, split="val", frames=card["data"]["frames"], size=card["data"]["size"]),
                      card["data"]["frames_per_clip"])
    metric = card["metric"]
    measured = evaluate(teacher.vit, build_method("none"), frames, batch_size=256).metrics[metric]
    # The card was measured with the fp32 weights; the zoo ships fp16.
    assert measured == pytest.approx(card["val_frames"][metric], abs=0.01)


def test_timm_image_teacher_from_a_local_file(tmp_path):
    """Any timm ViT with local weights plugs in as the image teacher (DINOv2/v3 on real data)."""
    import timm
    from safetensors.torch import save_file

    from tokbench.train.image_teacher import load_image_teacher

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "vit.safetensors"))
    teacher = load_image_teacher(f"timm:vit_tiny_patch16_224:{tmp_path / 'vit.safetensors'}")
    video = torch.randn(1, 3, 2, 32, 32)
    patch, frame = teacher.features(video)
    assert patch.shape == (1, 2, 14, 14, 192) and frame.shape == (1, 2, 192)
    resized = torch.nn.functional.interpolate(video[:, :, 1], size=(224, 224), mode="bilinear", align_corners=False)
    with torch.no_grad():
        tokens = model.forward_features(resized)
    torch.testing.assert_close(frame[0, 1], tokens[0, 0])
    torch.testing.assert_close(patch[0, 1].reshape(196, 192), tokens[0, 1:])
    with pytest.raises(TokbenchError, match="timm:<model name>"):
        load_image_teacher("timm:only-a-name")


def test_selector_files_fail_with_one_clear_error(tmp_path):
    config = BACKBONES.get("test_tiny")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read LookWhen selector .*junk.safetensors and its card"):
        LookWhenSelector.from_file(tmp_path / "junk.safetensors", config)
    save_checkpoint(LookWhenSelector(config, depth=1), tmp_path / "nocard.safetensors", {"kind": "lookwhen_selector"})
    with pytest.raises(CheckpointError, match="the card has no selector"):
        LookWhenSelector.from_file(tmp_path / "nocard.safetensors", config)
    wide = dataclasses.replace(config, embed_dim=64, num_heads=2)
    save_checkpoint(LookWhenSelector(wide, depth=1), tmp_path / "wide.safetensors",
                    {"selector": {"depth": 1, "scale": 2, "head_ratio": 4}})
    with pytest.raises(CheckpointError, match="does not fit a 32-wide selector"):
        LookWhenSelector.from_file(tmp_path / "wide.safetensors", config)
