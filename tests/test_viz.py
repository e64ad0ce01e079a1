"""Selection pictures: source tracking through drops and merges, group maps, painting by hand,
and `tokbench viz` end to end on a zoo model."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tokbench.cli import cli
from tokbench.methods import build_method, keep_count
from tokbench.viz import FADE, Selection, paint, token_groups


def test_token_groups_by_hand():
    # A prefix row (zero), token 1 holds patches 0 and 2, token 2 holds patch 3; patch 1 is dropped.
    source = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float32)
    sel = token_groups(source, (1, 2, 2))
    assert sel.groups.tolist() == [[[0, -1], [0, 1]]]
    assert (sel.tokens, sel.merged, sel.kept_patches, sel.num_patches) == (2, True, 3, 4)
    drop_only = token_groups(torch.tensor([[0, 0, 1.0], [1.0, 0, 0]]), (1, 1, 3))
    assert drop_only.groups.tolist() == [[[1, -1, 0]]] and not drop_only.merged


def test_paint_fades_dropped_patches_and_keeps_the_rest():
    frames = np.random.default_rng(0).uniform(size=(2, 4, 4, 3))
    groups = np.array([[[0, -1], [1, 2]], [[-1, -1], [3, -1]]])
    out = paint(frames, Selection(groups=groups, tokens=4, merged=False), patch=2)
    np.testing.assert_allclose(out[0, :2, :2], frames[0, :2, :2])  # kept, unchanged
    np.testing.assert_allclose(out[0, :2, 2:], frames[0, :2, 2:] * (1 - FADE) + FADE)  # dropped, faded
    np.testing.assert_allclose(out[1, 2:, :2], frames[1, 2:, :2])
    with pytest.raises(ValueError, match="do not fit"):
        paint(frames, Selection(groups=groups, tokens=4, merged=False), patch=3)


def test_paint_merge_groups_in_their_mean_colour_with_borders():
    frames = np.zeros((1, 2, 4, 3))
    frames[0, :, 0:2] = 0.2  # patch 0
    frames[0, :, 2:4] = 0.6  # patch 1
    out = paint(frames, Selection(groups=np.array([[[0, 0]]]), tokens=1, merged=True), patch=2)
    np.testing.assert_allclose(out, 0.4)  # one group: the mean colour, no border inside it
    split = paint(frames, Selection(groups=np.array([[[0, 1]]]), tokens=2, merged=True), patch=2)
    np.testing.assert_allclose(split[0, :, 0], 0.2)
    np.testing.assert_allclose(split[0, :, 1], 0.2 * 0.35)  # the border between the two groups
    np.testing.assert_allclose(split[0, :, 2:], 0.6)


@pytest.mark.parametrize("spec,p", [("random", 0.3), ("motion", 0.5), ("tome(r=6)", 1.0), ("vid_tldr(r_list=[5, 4])", 1.0)])
def test_trace_tokens_is_the_forward_pass_with_sources(spec, p, tiny, tiny_video):
    method = build_method(spec, p_ratio=p)
    method.setup(tiny)
    with torch.inference_mode():
        tokens = tiny.trace_tokens(tiny_video, method)
        logits = tiny(tiny_video, method)
    # The traced tokens are the ones the forward pass pools: same logits.
    torch.testing.assert_close(tiny.head(tiny.pool(tokens, size_weighted=method.size_weighted_pool)), logits)
    patches = tokens.source[:, tokens.n_prefix:]
    assert (tokens.source[:, : tokens.n_prefix] == 0).all()
    held = patches.sum(dim=1)  # each original patch is held by at most one token, once
    assert set(held.unique().tolist()) <= {0.0, 1.0}
    if tokens.size is not None:  # merging: every patch in exactly one group
        assert (held == 1).all()
        groups, size = patches.sum(dim=2), tokens.size[:, tokens.n_prefix:, 0]
        if spec.startswith("tome"):  # a ToMe token's size is the patches it holds
            torch.testing.assert_close(groups, size)
        else:  # vid-TLDR's background members carry no mass: size <= members
            assert (size <= groups + 1e-5).all() and (size < groups - 0.5).any()
    else:  # dropping: exactly the kept patches, at the positions recorded in index
        assert (held.sum(dim=1) == keep_count(tiny.num_patches, p)).all()
        assert (patches.argmax(dim=2) == tokens.index).all()


def test_viz_command_draws_lookwhen_on_a_zoo_model(tmp_path):
    out = tmp_path / "lookwhen.png"
    r = CliRunner().invoke(cli, ["viz", "--method", "lookwhen", "--dataset", "synth-gesture", "--p-ratio", "0.1",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lookwhen at P = 0.1: 29 of 288 tokens kept after the last block" in r.stderr


def test_viz_command_draws_merge_groups(tmp_path):
    r = CliRunner().invoke(cli, ["viz", "--method", "tome", "--dataset", "synth-motion", "--p-ratio", "0.6",
                                 "--clip", "2", "--out", str(tmp_path / "t.png")])
    assert r.exit_code == 0, r.output
    assert "tokens hold 288 of 288 patches" in r.stderr and "synth-motion val-2" in r.stderr


@pytest.mark.parametrize("args,message", [
    (["--p-ratio", "0.1:0.3"], "viz draws one P-Ratio"),
    (["--p-ratio", "1.5"], "P-Ratio"),
    (["--method", "tmoe"], "Did you mean 'tome'"),
    (["--method", "tome", "--p-ratio", "0.1"], "merging cannot go below"),
    (["--clip", "500"], "--clip 500 is out of range: synth-gesture/val has 500 clips"),
    (["--dataset", "synth-gestrue"], "unknown dataset"),
])
def test_viz_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    base = {"--method": "random", "--dataset": "synth-gesture", "--p-ratio": "0.3", "--out": str(tmp_path / "x.png")}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    argv = ["viz"] + [x for kv in base.items() for x in kv]
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert not (tmp_path / "x.png").exists()
