"""The shared training loop (determinism, resume, model selection), the protocols, the
backbone trainer and its card."""

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from tokbench.backbones import create_backbone
from tokbench.cli import cli
from tokbench.data import create_dataset
from tokbench.errors import TokbenchError
from tokbench.methods import build_method
from tokbench.train.loop import TrainConfig, fit, task_loss
from tokbench.train.protocols import FT_CONFIG, LP_CONFIG, fine_tune, linear_probe

TINY = {"frames": 4, "size": 32}
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=1e-3, seed=3)


@pytest.fixture(scope="module")
def motion():
    return create_dataset("synth-motion", split="train", num_clips=48, **TINY)


def _train(dataset, out, config=CONFIG, forward=None):
    torch.manual_seed(0)
    model = create_backbone("test_tiny", num_classes=10)
    return model, fit(model, dataset, validate=None, metric="top1", out=out, config=config, card={"kind": "test"},
                      forward=forward, progress=False)


def test_training_is_deterministic_and_learns_something(motion, tmp_path):
    a, ra = _train(motion, tmp_path / "a.safetensors")
    b, _ = _train(motion, tmp_path / "b.safetensors")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert len(ra.history) == 2 and ra.history[1]["loss"] < ra.history[0]["loss"] + 0.5
    saved = load_file(str(tmp_path / "a.safetensors"))
    assert torch.equal(saved["head.weight"], a.state_dict()["head.weight"])  # last epoch kept without validation
    card = json.loads((tmp_path / "a.json").read_text())
    assert card["kind"] == "test" and card["best_epoch"] == 2 and card["train"]["seed"] == 3


def test_killed_training_resumes_to_the_same_weights(motion, tmp_path):
    full, _ = _train(motion, tmp_path / "full.safetensors")
    calls = {"n": 0}

    def crash_in_epoch_two(model, batch, gen):
        calls["n"] += 1
        if calls["n"] == 5:  # 3 batches per epoch: the second batch of epoch 2
            raise KeyboardInterrupt
        return model(batch["video"], clip_ids=batch["index"])

    config = dataclasses.replace(CONFIG, token_drop=0.0)
    full_plain, _ = _train(motion, tmp_path / "plain.safetensors", config=config)
    with pytest.raises(KeyboardInterrupt):
        _train(motion, tmp_path / "resumed.safetensors", config=config, forward=crash_in_epoch_two)
    assert (tmp_path / "resumed.safetensors.resume.pt").exists()
    resumed, result = _train(motion, tmp_path / "resumed.safetensors", config=config)
    assert [row["epoch"] for row in result.history] == [1, 2]
    for (k, va), vb in zip(full_plain.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(full.head.weight, full_plain.head.weight)  # token drop changes training


def test_resume_with_other_settings_is_refused(motion, tmp_path):
    _train(motion, tmp_path / "x.safetensors", config=dataclasses.replace(CONFIG, epochs=1))
    with pytest.raises(TokbenchError, match="made with other settings"):
        _train(motion, tmp_path / "x.safetensors", config=dataclasses.replace(CONFIG, epochs=1, lr=5e-4))


def test_best_epoch_is_kept_when_validating(motion, tmp_path):
    torch.manual_seed(0)
    model = create_backbone("test_tiny", num_classes=10)
    scores = iter([0.5, 0.2])  # epoch 1 is better
    seen = []

    def validate(m):
        seen.append(m.head.weight.detach().clone())
        return {"top1": next(scores)}

    result = fit(model, motion, validate=validate, metric="top1", out=tmp_path / "m.safetensors", config=CONFIG,
                 card={}, progress=False)
    assert result.best_epoch == 1
    assert torch.equal(load_file(str(tmp_path / "m.safetensors"))["head.weight"], seen[0])


def test_task_losses():
    logits = torch.tensor([[2.0, 0.0, 0.0, 1.0, 0.0]])
    batch = {"label": torch.tensor([0]), "verb": torch.tensor([0]), "noun": torch.tensor([1])}
    ce = torch.nn.functional.cross_entropy
    assert task_loss("single", logits, batch) == pytest.approx(ce(logits, torch.tensor([0])).item())
    vn = ce(logits[:, :2], torch.tensor([0])) + ce(logits[:, 2:], torch.tensor([1]))
    assert task_loss("verb_noun", logits, batch, num_verbs=2) == pytest.approx(vn.item())
    hot = {"label": torch.tensor([[1.0, 0, 0, 1, 0]])}
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, hot["label"])
    assert task_loss("multilabel", logits, hot) == pytest.approx(bce.item())


def test_invalid_training_settings():
    with pytest.raises(TokbenchError, match="invalid training settings"):
        TrainConfig(epochs=0)
    with pytest.raises(TokbenchError, match="token_drop must be in"):
        TrainConfig(drop_range=(0.5, 0.2))


def test_linear_probe_trains_only_a_new_head_on_reduced_features(motion):
    torch.manual_seed(0)
    model = create_backbone("test_tiny", num_classes=10)
    config = dataclasses.replace(LP_CONFIG, epochs=3, batch_size=16)
    probe = linear_probe(model, build_method("random", p_ratio=0.25), motion, config=config)
    again = linear_probe(model, build_method("random", p_ratio=0.25), motion, config=config)
    full = linear_probe(model, build_method("none"), motion, config=config)
    assert torch.equal(probe.blocks[1].mlp.fc1.weight, model.blocks[1].mlp.fc1.weight)  # backbone frozen
    assert not torch.equal(probe.head.weight, model.head.weight)
    assert torch.equal(probe.head.weight, again.head.weight)  # deterministic
    assert not torch.equal(probe.head.weight, full.head.weight)  # trained on the reduced tokens' features


def test_fine_tune_changes_the_backbone_and_not_the_original(motion):
    torch.manual_seed(0)
    model = create_backbone("test_tiny", num_classes=10)
    before = model.blocks[0].attn.qkv.weight.clone()
    tuned = fine_tune(model, build_method("random", p_ratio=0.5), motion,
                      config=dataclasses.replace(FT_CONFIG, epochs=1, batch_size=16))
    assert torch.equal(model.blocks[0].attn.qkv.weight, before)
    assert not torch.equal(tuned.blocks[0].attn.qkv.weight, before)


def test_train_backbone_command_writes_weights_and_a_true_card(tmp_path):
    out = tmp_path / "gesture.safetensors"
    r = CliRunner().invoke(cli, ["train", "backbone", "--dataset", "synth-gesture", "--backbone", "test_tiny",
                                 "--epochs", "1", "--train-clips", "32", "--dtype", "fp16", "--out", str(out)])
    assert r.exit_code == 0, r.output
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["dataset"] == "synth-gesture" and card["backbone"] == "test_tiny" and card["weights_dtype"] == "fp16"
    assert card["data"]["train_clips"] == 32 and card["train"]["epochs"] == 1 and card["metric"] == "top1"
    assert "tokbench train backbone" in card["command"] and card["chance"] == pytest.approx(1 / 8)
    assert set(card["val_random_drop"]) == {"metric", "0.5", "0.1"} and card["check"]["clips"] == 64
    assert all(t.dtype == torch.float16 for t in load_file(str(out)).values())
    # The card's numbers are those of the shipped (fp16) file.
    from tokbench.benchmark.evaluate import slice_check

    model = create_backbone("test_tiny", checkpoint=out, num_classes=8)
    assert slice_check(model, "synth-gesture", geometry=TINY) == card["check"]
    r = CliRunner().invoke(cli, ["train", "backbone", "--dataset", "kinetics400", "--out", str(tmp_path / "k.safetensors")])
    assert r.exit_code == 2 and "real dataset" in r.stderr
