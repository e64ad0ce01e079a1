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


# --------------------------------------------------------------------------- hand-worked oracle

SUBSET = (5, 6, 22)  # the tubelets (t, h, w raster order) the true-class logit depends on
GELU_1 = 0.8413447460685429  # GELU(1) = 1 * Phi(1)


def _hand_model(pool: str):
    """A 32-token model whose true-class logit (class 2) reads only the tokens of SUBSET.

    Width 4, one head, MLP width 8, no position embedding, LayerNorms replaced by the
    identity. The patch embedding writes a tubelet's mean pixel m to channel 0 and 1 - m to
    channel 1. Block 0 has no attention and an MLP passing GELU(channel 0) and GELU(channel
    1) through hidden units 0 and 1 to the same channels. The head reads channel 0 for class
    2 only. With ``avg`` pooling (depth 1): y = mean over tokens of (m + GELU(m)), so
    dy/dA_t0 = 1/N and dy/dA_t1 = 0 for every token. With ``token`` pooling (depth 2, a CLS
    token): block 1 attends uniformly (zero queries and keys) with identity values and
    output projection, so the CLS token gets the mean over all N + 1 tokens and dy/dA_t0 =
    1/(N + 1). Either way w = (c, 0, ...) with c > 0, and ReLU(sum_d w_d A_td) = c GELU(m_t):
    c GELU(1) on SUBSET (bright tubelets, m = 1) and exactly 0 elsewhere (m = 0), even though
    the background activates hidden unit 1 as strongly: its gradient is 0.
    """
    from torch import nn

    from tokbench.backbones.vit import VideoViT, VideoViTConfig

    config = VideoViTConfig(num_frames=4, img_size=32, tubelet_size=2, patch_size=8, embed_dim=4, depth=1 if pool == "avg" else 2,
                            num_heads=1, mlp_ratio=2.0, class_token=pool == "token", global_pool=pool, num_classes=3)
    model = VideoViT(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.pos_embed.zero_()
        model.norm, model.fc_norm = nn.Identity(), nn.Identity()
        for blk in model.blocks:
            blk.norm1, blk.norm2 = nn.Identity(), nn.Identity()
        w = model.patch_embed.proj.weight  # (D, C, t, p, p)
        w[0], w[1] = 1 / w[0].numel(), -1 / w[1].numel()
        model.patch_embed.proj.bias[1] = 1.0
        mlp = model.blocks[0].mlp
        mlp.fc1.weight[0, 0] = mlp.fc1.weight[1, 1] = 1.0
        mlp.fc2.weight[0, 0] = mlp.fc2.weight[1, 1] = 1.0
        if pool == "token":
            attn = model.blocks[1].attn
            attn.qkv.weight[8:12] = torch.eye(4)  # values = tokens; queries, keys = 0: uniform attention
            attn.proj.weight.copy_(torch.eye(4))
        model.head.weight[2, 0] = 1.0
    return model


def _hand_video(batch: int = 2) -> torch.Tensor:
    video = torch.zeros(batch, 3, 4, 32, 32)
    for i in SUBSET:
        t, h, w = i // 16, (i // 4) % 4, i % 4
        video[:, :, 2 * t : 2 * t + 2, 8 * h : 8 * h + 8, 8 * w : 8 * w + 8] = 1.0
    return video


@pytest.mark.parametrize("pool", ["avg", "token"])
def test_oracle_ranks_the_tokens_the_logit_reads_first_hand_worked(pool):
    from tokbench.methods.lite import ACTIVATIONS, VARIANTS, oracle_gradients, oracle_raw

    model, video = _hand_model(pool), _hand_video()
    weights = target_weights("single", torch.tensor([2, 2]), 3)
    n = 32 + (pool == "token")  # tokens the pooled feature averages over
    assert oracle_block(model.config) == 0
    expected = torch.zeros(2, 32)
    expected[:, list(SUBSET)] = 1.0
    a, g = oracle_gradients(model, video, weights)
    torch.testing.assert_close(g[..., 0], torch.full((2, 32), 1 / n))  # every token reaches y equally ...
    torch.testing.assert_close(g[..., 1:], torch.zeros(2, 32, 7))  # ... through channel 0 only
    torch.testing.assert_close(oracle_raw(a, g), expected * GELU_1 / n)  # c GELU(1) on SUBSET, 0 elsewhere
    for variant in VARIANTS:
        for activations in ACTIVATIONS:
            got = oracle_values(model, video, weights, variant=variant, activations=activations)
            if variant == "grad_norm":  # sees no activation: every token has the same gradient here
                assert got.eq(0).all(), activations
                continue
            torch.testing.assert_close(got, expected, msg=f"{variant}, {activations}")
    for ties in ("random", "position", "value"):
        method = build_method(f"oracle(ties={ties!r})", p_ratio=3 / 32)
        method.setup(model)
        clips = Clips(video, torch.arange(2), weights)
        kept = method.after_embed(model.embed(clips, method), clips)
        assert kept.index.tolist() == [list(SUBSET)] * 2, ties


def test_oracle_tie_rules_on_the_hand_worked_model():
    """29 of the 32 hand-worked values are exactly 0: ``position`` keeps the first of them,
    ``random`` a per-clip random few, ``value`` orders them by the signed value (all 0 here,
    then at random: as ``random`` draws, the same tokens)."""
    model, video = _hand_model("avg"), _hand_video()
    weights = target_weights("single", torch.tensor([2, 2]), 3)
    clips = Clips(video, torch.tensor([0, 1]), weights)
    kept = {}
    for ties in ("position", "random", "value"):
        method = build_method(f"oracle(ties={ties!r})", p_ratio=5 / 32)
        method.setup(model)
        kept[ties] = method.after_embed(model.embed(clips, method), clips).index.tolist()
        assert all(set(SUBSET) <= set(row) for row in kept[ties])
    assert kept["position"] == [[0, 1, *SUBSET]] * 2
    assert kept["random"] == kept["value"] and kept["random"][0] != kept["random"][1]


def test_oracle_ranks_are_lexicographic_then_by_position():
    from tokbench.methods.lite import _ranks

    values = torch.tensor([[0.5, 0.0, 0.0, 1.0, 0.0, 0.0]])
    raw = torch.tensor([[0.5, -1.0, -0.2, 1.0, -3.0, -0.2]])
    order = lambda s: s.argsort(dim=1, descending=True).tolist()  # noqa: E731 - ranks are distinct
    assert order(_ranks(values)) == [[3, 0, 1, 2, 4, 5]]
    assert order(_ranks(values, raw)) == [[3, 0, 2, 5, 1, 4]]
    assert order(_ranks(values, raw, torch.tensor([[0, 0, 0.1, 0, 0, 0.9]]))) == [[3, 0, 5, 2, 1, 4]]


def test_oracle_options_are_checked_and_only_other_values_enter_the_cell_id():
    from tokbench.benchmark.runner import Sweep, _identity_params, plan
    from tokbench.methods.lite import Oracle

    for spec, fragment in [("oracle(variant='cam')", "variant must be one of gradcam, gradcam_abs, gxa, gxa_abs, grad_norm"),
                           ("oracle(ties='first')", "ties must be one of random, position, value"),
                           ("oracle(activations='qkv')", "activations must be one of hidden, mlp_out, block_out")]:
        with pytest.raises(TokbenchError, match=fragment):
            build_method(spec)
    method = build_method("oracle(ties='position', variant='gxa')")
    assert method.params() == {"block": None, "variant": "gxa", "ties": "position", "activations": "hidden"}
    # The paper's oracle keeps the cell id it had before these options existed: {"block": None}.
    assert _identity_params(build_method("oracle").params(), Oracle.identity_defaults) == {"block": None}
    assert _identity_params(method.params(), Oracle.identity_defaults) == {"block": None, "variant": "gxa",
                                                                           "ties": "position"}
    with pytest.warns(UserWarning, match="same method"):
        cells = plan(Sweep(backbones=("test_tiny",), methods=(
            "oracle", "oracle(variant='gradcam', ties='random', activations='hidden')", "oracle(ties='position')",
            "oracle(activations='mlp_out')"), p_ratios=(0.5,), metrics=("flops",)))
    assert [c.method_id for c in cells] == ["oracle", "oracle(ties='position')", "oracle(activations='mlp_out')"]
    assert len({c.key for c in cells}) == 3
