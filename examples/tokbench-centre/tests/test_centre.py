"""The centre method by hand, and through tokbench's backbone like any built-in."""

import pytest
import tokbench_centre  # noqa: F401 - registers "centre"
import torch

from tokbench.backbones import create_backbone
from tokbench.methods import build_method, method_id
from tokbench.tokens import Clips


class Grid:  # the one attribute `setup` reads
    def __init__(self, grid):
        self.config = type("Config", (), {"grid": grid})()


def kept(method, grid, batch=1):
    method.setup(Grid(grid))
    n = grid[0] * grid[1] * grid[2]
    clips = Clips(video=torch.zeros(batch, 3, 2, 4, 4), ids=torch.arange(batch))
    return method.before_embed(clips, n)


def test_keeps_the_middle_tubelet_first():
    # A 1 x 3 x 3 grid: tubelet 4 is the centre, then the four edge-adjacent ones (1, 3, 5, 7).
    assert kept(build_method("centre", p_ratio=1 / 9), (1, 3, 3)).tolist() == [[4]]
    assert kept(build_method("centre", p_ratio=5 / 9), (1, 3, 3)).tolist() == [[1, 3, 4, 5, 7]]


def test_focus_moves_with_the_options():
    # Focus on the top-left corner: tubelet 0 first, then 1 and 3 (equally near).
    assert kept(build_method("centre(centre_y=0.0, centre_x=0.0)", p_ratio=1 / 9), (1, 3, 3)).tolist() == [[0]]
    assert kept(build_method("centre(centre_y=0.0, centre_x=0.0)", p_ratio=3 / 9), (1, 3, 3)).tolist() == [[0, 1, 3]]


def test_ties_across_time_are_spread_by_the_seed_and_deterministic():
    # 4 time steps x 1 x 1: every tubelet is equally near, so the seed decides, the same every call.
    first = kept(build_method("centre", p_ratio=0.5), (4, 1, 1))
    assert first.tolist() == kept(build_method("centre", p_ratio=0.5), (4, 1, 1)).tolist()
    picks = {tuple(kept(build_method(f"centre(seed={s})", p_ratio=0.5), (4, 1, 1))[0].tolist()) for s in range(8)}
    assert len(picks) > 1  # not always the first frames
    assert kept(build_method("centre", p_ratio=0.5), (4, 1, 1), batch=3).shape == (3, 2)


def test_bad_options_fail_clearly():
    with pytest.raises(Exception, match="centre_y must lie in"):
        build_method("centre(centre_y=1.5)")
    assert method_id(build_method("centre(seed=2)")) == "centre(seed=2)"


def test_runs_on_a_tokbench_backbone_like_a_builtin():
    model = create_backbone("test_tiny")  # 4 frames, 32 px, tubelet 2, patch 8: a 2 x 4 x 4 grid
    method = build_method("centre", p_ratio=0.25)
    method.setup(model)
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    logits, tokens_per_block = model.forward_with_info(video, method)
    assert logits.shape == (2, 10)
    assert tokens_per_block[:, 0].tolist() == [1 + 8, 1 + 8]  # CLS + 25 % of 32 tubelets
    traced = model.trace_tokens(video, method)
    # The kept tubelets are the 2 x 2 middle of each time step's 4 x 4 grid.
    middle = sorted(t * 16 + h * 4 + w for t in range(2) for h in (1, 2) for w in (1, 2))
    assert traced.index[0].tolist() == middle
