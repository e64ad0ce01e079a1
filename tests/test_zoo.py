"""The shipped zoo: one backbone per synthetic dataset, each card true (re-measured)."""

import pytest
import torch

from tokbench.backbones import create_backbone
from tokbench.benchmark.evaluate import slice_check
from tokbench.data.synthetic import SYNTHETIC
from tokbench.zoo import zoo_card, zoo_checkpoint, zoo_datasets


def test_every_synthetic_dataset_has_a_shipped_backbone():
    assert zoo_datasets() == sorted(SYNTHETIC)


@pytest.mark.parametrize("dataset", sorted(SYNTHETIC))
def test_card_is_complete_and_weights_are_small_fp16(dataset):
    from safetensors.torch import load_file

    card = zoo_card(dataset)
    for key in ("command", "train", "data", "train_seconds", "val", "test", "check", "val_random_drop", "config"):
        assert key in card, key
    assert card["command"].startswith(f"tokbench train backbone --dataset {dataset} ")
    assert card["train"]["seed"] == 0 and card["weights_dtype"] == "fp16"
    assert zoo_checkpoint(dataset).stat().st_size < 2_000_000
    assert all(t.dtype == torch.float16 for t in load_file(str(zoo_checkpoint(dataset))).values())


@pytest.mark.parametrize("dataset", sorted(SYNTHETIC))
def test_shipped_weights_reproduce_the_card(dataset):
    """The card's accuracy on the first val clips, re-measured from the shipped file."""
    card = zoo_card(dataset)
    model = create_backbone(card["backbone"], checkpoint=zoo_checkpoint(dataset), num_classes=card["config"]["num_classes"])
    geometry = {"frames": card["data"]["frames"], "size": card["data"]["size"]}
    measured = slice_check(model, dataset, geometry=geometry, clips=card["check"]["clips"])
    for metric, value in card["check"].items():
        if metric not in ("split", "clips"):
            assert measured[metric] == pytest.approx(value, abs=1e-6), metric


# Zoo models that miss a target, with what was measured. Issue 4 stays open until they meet
# it; strict, so the test says so the day a retrained model does.
SHORT_OF_TARGET: dict[str, str] = {}


@pytest.mark.parametrize("dataset", [
    pytest.param(d, marks=pytest.mark.xfail(strict=True, reason=SHORT_OF_TARGET[d])) if d in SHORT_OF_TARGET else d
    for d in sorted(SYNTHETIC)
])
def test_zoo_meets_its_targets(dataset):
    """Far above chance but not perfect with all tokens; random drop at P = 0.1 costs
    clearly more than at P = 0.5 (issue 4's targets, from the card's full val numbers)."""
    card = zoo_card(dataset)
    metric = card["metric"]
    full = card["val"][metric]
    chance = card["chance"]
    if chance is None:  # mAP: random scores give each class its positive rate
        from tokbench.data import create_dataset

        val = create_dataset(dataset, split="val", num_clips=card["data"]["val_clips"], frames=card["data"]["frames"],
                             size=card["data"]["size"])
        rate = torch.as_tensor(val.labels, dtype=torch.float64).mean(0)
        chance = rate[rate > 0].mean().item()
    assert 2 * chance < full < 0.995, (full, chance)
    drop = card["val_random_drop"]
    assert full - drop["0.1"] > 1.5 * max(full - drop["0.5"], 0.01), drop



def test_readme_zoo_table_is_generated_from_the_cards():
    from pathlib import Path

    from tokbench.report.zoo_tables import zoo_table_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    hint = "regenerate the README's zoo table with tokbench.report.zoo_tables.zoo_table_markdown()"
    assert zoo_table_markdown() in readme, hint


def test_readme_selectors_table_is_generated_from_the_cards():
    from pathlib import Path

    from tokbench.report.zoo_tables import selectors_table_markdown

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    hint = "regenerate the README's selectors table with tokbench.report.zoo_tables.selectors_table_markdown()"
    assert selectors_table_markdown() in readme, hint


@pytest.mark.parametrize("dataset", sorted(SYNTHETIC))
def test_shipped_lite_selector_reproduces_its_card(dataset):
    """The shipped LITE selector reloads and gives its card's val accuracy at P = 0.5."""
    from tokbench.benchmark.evaluate import evaluate
    from tokbench.data import create_dataset
    from tokbench.methods import build_method
    from tokbench.weights import read_card
    from tokbench.zoo import zoo_artifact

    path = zoo_artifact("lite", dataset)
    card = read_card(path)
    assert card["command"].startswith(f"tokbench train lite --dataset {dataset} ") and card["train"]["seed"] == 0
    backbone = zoo_card(dataset)
    model = create_backbone(backbone["backbone"], checkpoint=zoo_checkpoint(dataset),
                            num_classes=backbone["config"]["num_classes"])
    method = build_method("lite", p_ratio=0.5)
    method.bind(dataset=dataset)
    method.setup(model)
    val = create_dataset(dataset, split="val", frames=backbone["data"]["frames"], size=backbone["data"]["size"])
    measured = evaluate(model, method, val, batch_size=64).metrics[card["metric"]]
    assert measured == pytest.approx(card["val_accuracy"]["lite"]["0.5"], abs=1e-6)
