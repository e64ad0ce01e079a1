"""LITE: the Grad-CAM oracle against an independent autograd computation, the selector,
and the privileged path through evaluation."""

import pytest
import torch

from tokbench.data.labels import target_weights
from tokbench.errors import CheckpointError, TokbenchError
from tokbench.methods import build_method
from tokbench.methods.lite import LiteSelector, oracle_block, oracle_values
from tokbench.tokens import Clips


def _reference_oracle(model, video, labels, block):
    """Eq. (1)-(2) by the book: capture the MLP hidden activations of ``block`` with a
    forward hook during the plain forward pass, differentiate the true-class logit."""
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["a"] = output

    handle = model.blocks[block].mlp.act.register_forward_hook(keep)
    try:
        logits = model(video)
        logits.gather(1, labels[:, None]).sum().backward()
    finally:
        handle.remove()
    a, g = captured["a"][:, 1:], captured["a"].grad[:, 1:]  # patch tokens (CLS first)
    v = torch.relu((a * g.mean(dim=1, keepdim=True)).sum(-1))
    return (v - v.amin(1, keepdim=True)) / (v.amax(1, keepdim=True) - v.amin(1, keepdim=True))


@pytest.mark.parametrize("block", [0, 1])
def test_oracle_matches_a_plain_autograd_computation(tiny, tiny_video, block):
    labels = torch.tensor([2, 7, 0])
    expected = _reference_oracle(tiny, tiny_video, labels, block)
    got = oracle_values(tiny, tiny_video, target_weights("single", labels, 10), block=block)
    torch.testing.assert_close(got, expected.detach(), atol=1e-5, rtol=1e-4)
    assert got.shape == (3, 32) and got.amin(1).eq(0).all() and got.amax(1).eq(1).all()


def test_oracle_gradient_agrees_with_finite_differences(tiny, tiny_video):
    """dy/dA for one hidden unit of one token, by central differences on the block's MLP."""
    labels = torch.tensor([4])
    video = tiny_video[:1].double()
    model = tiny.double()
    blk = model.blocks[1]
    captured = {}
    handle = blk.mlp.act.register_forward_hook(lambda m, i, o: captured.setdefault("a", o))
    try:
        model(video)
    finally:
        handle.remove()
    a = captured["a"].detach()

    def score(shift: float) -> float:
        bumped = a.clone()
        bumped[0, 5, 3] += shift
        handle = blk.mlp.act.register_forward_hook(lambda m, i, o: bumped)
        try:
            return model(video)[0, 4].item()
        finally:
            handle.remove()

    numeric = (score(1e-4) - score(-1e-4)) / 2e-4
    hidden = a.clone().requires_grad_(True)
    handle = blk.mlp.act.register_forward_hook(lambda m, i, o: hidden)
    try:
        model(video)[0, 4].backward()
    finally:
        handle.remove()
    assert hidden.grad[0, 5, 3].item() == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    assert oracle_values(model, video, target_weights("single", labels, 10), block=1).shape == (1, 32)


def test_oracle_block_follows_the_pooling():
    from tokbench.backbones import BACKBONES

    assert oracle_block(BACKBONES.get("videomae_b")) == 11  # mean pooling: the last block
    assert oracle_block(BACKBONES.get("synth_tiny")) == 2  # CLS pooling: the last block never reaches CLS


def test_target_weights_for_each_task():
    assert target_weights("single", torch.tensor([1]), 3).tolist() == [[0, 1, 0]]
    assert target_weights("multilabel", torch.tensor([[1, 0, 1]]), 3).tolist() == [[1, 0, 1]]
    w = target_weights("verb_noun", None, 5, num_verbs=2, verbs=torch.tensor([1]), nouns=torch.tensor([2]))
    assert w.tolist() == [[0, 1, 0, 0, 1]]


def test_oracle_is_privileged_and_needs_labels(tiny, tiny_video):
    method = build_method("oracle", p_ratio=0.5)
    method.setup(tiny)
    assert method.privileged
    with pytest.raises(TokbenchError, match="needs the true labels"):
        tiny(tiny_video, method)
    labels = target_weights("single", torch.tensor([1, 2, 3]), 10)
    logits, counts = tiny.forward_with_info(tiny_video, method, labels=labels)
    assert counts[:, 0].eq(17).all() and torch.isfinite(logits).all()


def test_lite_selector_file_round_trip_and_selection(tiny, tiny_video, tmp_path):
    from safetensors.torch import save_file

    selector = LiteSelector(32)
    assert [m.out_features for m in selector.mlp if hasattr(m, "out_features")] == [16, 8, 1]
    path = tmp_path / "sel.safetensors"
    save_file(selector.state_dict(), str(path))
    method = build_method(f"lite(selector={str(path)!r})", p_ratio=0.25)
    method.setup(tiny)
    assert method.extra_params() == 32 * 16 + 16 + 16 * 8 + 8 + 8 + 1
    clips = Clips(tiny_video, torch.arange(3))
    tokens = tiny.embed(clips, method)
    kept = method.after_embed(tokens, clips)
    expected = selector(tokens.x[:, 1:]).topk(8, dim=1).indices.sort(dim=1).values
    assert torch.equal(kept.index, expected)
    with pytest.raises(CheckpointError, match="not a LITE selector for width 64"):
        LiteSelector.from_file(path, 64)


def test_lite_flops_include_the_selector():
    from tokbench.backbones import BACKBONES
    from tokbench.benchmark.flops import count_flops

    config = BACKBONES.get("videomae_b")
    lite = count_flops(config, build_method("lite", p_ratio=0.5)).gflops
    topk_after_embedding = 79.84036224
    selector = 1568 * (768 * 384 + 384 * 192 + 192) / 1e9  # 0.578 GF, LITE's 80 GF point
    assert lite == pytest.approx(topk_after_embedding + selector, abs=1e-6)


def test_lite_zoo_selector_cost_only_or_per_synthetic_dataset(tiny, tiny_video):
    # A cost-only sweep (no dataset) gets an untrained selector: the cost does not depend on it.
    method = build_method("lite", p_ratio=0.5)
    method.bind(dataset=None)
    method.setup(tiny)
    assert method.describe()["selector"].startswith("untrained") and tiny(tiny_video, method).shape == (3, 10)
    with pytest.raises(CheckpointError, match="no shipped lite artifact for 'kinetics400'"):
        build_method("lite").bind(dataset="kinetics400")
    with pytest.raises(TokbenchError, match="needs a synthetic dataset"):
        build_method("lite").setup(tiny)  # never bound


def test_oracle_memo_reuses_values_across_p(tiny, tiny_video):
    """With the runner's memo, values are computed once per clip and reused at every P."""
    labels = target_weights("single", torch.tensor([1, 2, 3]), 10)
    memo: dict = {}
    for p in (0.5, 0.25):
        method = build_method("oracle", p_ratio=p)
        method.bind(dataset=None, memo=memo)
        method.setup(tiny)
        logits = tiny(tiny_video, method, labels=labels)
        assert len(memo) == 3  # one entry per clip, shared by both P
    method = build_method("oracle", p_ratio=0.25)
    method.setup(tiny)
    torch.testing.assert_close(logits, tiny(tiny_video, method, labels=labels))
