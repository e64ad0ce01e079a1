"""LITE++: budgets from confidence, per-clip selection, FLOPs with the difficulty model,
and the shipped difficulty models against their cards."""

import pytest
import torch
from method_settings import ASSETS

from tokbench.backbones import BACKBONES, create_backbone
from tokbench.benchmark.flops import count_flops
from tokbench.errors import TokbenchError
from tokbench.methods import build_method, keep_count
from tokbench.methods.lite_pp import DifficultyModel, confidence, small_budget

SELECTOR = str(ASSETS / "lite_test_tiny.safetensors")
DIFFICULTY = str(ASSETS / "lite_pp_difficulty_test_tiny.safetensors")
SPEC = f"lite++(selector={SELECTOR!r}, difficulty={DIFFICULTY!r})"


@pytest.mark.parametrize(("p", "small"), [(0.9, 0.3), (0.7, 0.3), (0.5, 0.3), (0.3, 0.2), (0.6, 0.3),
                                          (0.4, 0.4 * 2 / 3), (0.1, 0.1 * 2 / 3)])
def test_small_budget_matches_the_paper_and_extends_it(p, small):
    assert small_budget(p) == pytest.approx(small)


def test_budgets_by_confidence_band():
    method = build_method("lite++", p_ratio=0.7)
    conf = torch.tensor([0.05, 0.1, 0.3, 0.5, 0.8])
    assert method.budgets(conf).tolist() == pytest.approx([0.3, 0.7, 0.7, 0.7, 0.3])
    baseline = build_method("lite++(hard='baseline')", p_ratio=0.7)
    assert baseline.budgets(conf).tolist() == pytest.approx([0.7, 0.7, 0.7, 0.7, 0.3])
    with pytest.raises(TokbenchError, match="tau1 <= tau2"):
        build_method("lite++(tau1=0.6, tau2=0.5)")
    with pytest.raises(TokbenchError, match="hard must be"):
        build_method("lite++(hard='none')")


def test_confidence_per_task():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    e = torch.e ** 2
    torch.testing.assert_close(confidence(logits, "single"), torch.tensor([e / (e + 2), 1 / 3]))
    torch.testing.assert_close(confidence(logits, "multilabel"), torch.sigmoid(torch.tensor([2.0, 0.0])))
    # verb + noun: one verb logit pair and one noun logit: P(top verb) * P(top noun).
    vn = torch.tensor([[2.0, 0.0, 5.0]])
    torch.testing.assert_close(confidence(vn, "verb_noun", num_verbs=2), torch.tensor([e / (e + 1) * 1.0]))


def _method(p, tiny, confidences):
    method = build_method(SPEC, p_ratio=p)
    method.setup(tiny)
    method._difficulty.confidence = lambda video: confidences  # set each clip's band by hand
    return method


def test_each_clip_runs_at_its_own_budget(tiny, tiny_video):
    """A batch with easy, medium and hard clips gives each clip exactly what LITE gives it at
    that clip's budget, and keeps the LITE selector's top tokens."""
    conf = torch.tensor([0.9, 0.3, 0.05])  # easy, between, very hard
    method = _method(0.75, tiny, conf)
    logits, counts = tiny.forward_with_info(tiny_video, method)
    ratios = [0.3, 0.75, 0.3]
    assert counts[:, 0].tolist() == [1 + keep_count(32, r) for r in ratios]
    for b, r in enumerate(ratios):
        lite = build_method(f"lite(selector={SELECTOR!r})", p_ratio=r)
        lite.setup(tiny)
        torch.testing.assert_close(logits[b : b + 1], tiny(tiny_video[b : b + 1], lite), atol=1e-5, rtol=1e-5)


def test_flops_add_the_difficulty_model_per_clip(tiny, tiny_video):
    from fvcore.nn import FlopCountAnalysis

    from tokbench.benchmark.flops import _with_handles

    config = BACKBONES.get("test_tiny")
    difficulty = DifficultyModel.from_file(DIFFICULTY, config)
    d = _with_handles(FlopCountAnalysis(difficulty, (tiny_video[:1],))).total() / 1e9
    assert d > 0
    lite = {r: count_flops(config, build_method(f"lite(selector={SELECTOR!r})", p_ratio=r)).gflops for r in (0.3, 0.75)}
    method = build_method(SPEC, p_ratio=0.75)
    method.setup(tiny)
    conf = method._difficulty.confidence(tiny_video)
    ratios = method.budgets(conf).tolist()
    counted = count_flops(config, method, videos=tiny_video)
    expected = sum(lite[0.3 if r == 0.3 else 0.75] + d for r in ratios) / len(ratios)
    assert counted.gflops == pytest.approx(expected, rel=1e-9)


ZOO = ["synth-appearance", "synth-egocentric", "synth-gesture", "synth-motion", "synth-multilabel", "synth-sequence"]


@pytest.mark.parametrize("dataset", ZOO)
def test_shipped_difficulty_model_reproduces_its_card(dataset):
    from tokbench.benchmark.evaluate import evaluate
    from tokbench.data import create_dataset
    from tokbench.train.lite_pp import _Logits
    from tokbench.weights import read_card
    from tokbench.zoo import zoo_artifact, zoo_card

    path = zoo_artifact("lite++", dataset)
    card = read_card(path)
    config = create_backbone(zoo_card(dataset)["backbone"], num_classes=card["num_classes"]).config
    model = DifficultyModel.from_file(path, config)
    ds = create_dataset(dataset, split="val", frames=card["data"]["frames"], size=card["data"]["size"])
    metric = card["metric"]
    assert evaluate(_Logits(model), build_method("none"), ds, batch_size=128).metrics[metric] == pytest.approx(
        card["val"][metric], abs=1e-6)
