"""``centre``: keep the tokens nearest the frame centre (a centre-bias baseline).

A worked example of a tokbench method plug-in. Photographers and cameras centre what
matters, so the tubelets nearest the middle of the frame are a cheap, content-blind guess
at the important ones; saliency research calls this the centre bias. The method is a
:class:`~tokbench.methods.SelectionMethod`: it only scores the tubelets, and tokbench keeps
the top ``keep_count(N, P)`` with its one rounding rule, embeds only those (the scores need
no tokens), and counts FLOPs, times and evaluates it like any built-in.

Scores: minus the squared distance of each tubelet's centre from the focus point
(``centre_y``, ``centre_x``, as fractions of the frame), the same in every time step. Equal
distances (the same ring in different time steps) are ordered by a fixed random draw
(``seed``), so that a small budget spreads over time instead of filling the first frames.
"""

from __future__ import annotations

import torch
from torch import Tensor

from tokbench.methods import SelectionMethod, register_method
from tokbench.tokens import Clips, Tokens

__all__ = ["Centre"]
__version__ = "0.1.0"


@register_method("centre")
class Centre(SelectionMethod):
    """Keep the tubelets nearest the frame centre (centre-bias baseline; a plug-in example).

    Args:
        p_ratio: fraction of tubelets kept.
        centre_y: focus row as a fraction of the frame height (0 = top).
        centre_x: focus column as a fraction of the frame width (0 = left).
        seed: tie-break between equally distant tubelets of different time steps.
    """

    scores_need_tokens = False  # scores from the grid alone: only kept tubelets are embedded

    def __init__(self, *, p_ratio: float = 1.0, centre_y: float = 0.5, centre_x: float = 0.5, seed: int = 0) -> None:
        super().__init__(p_ratio=p_ratio)
        for name, value in (("centre_y", centre_y), ("centre_x", centre_x)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1] (a fraction of the frame), got {value}")
        self.centre_y, self.centre_x, self.seed = float(centre_y), float(centre_x), int(seed)
        self._grid: tuple[int, int, int] | None = None

    def setup(self, backbone) -> None:
        self._grid = backbone.config.grid  # (T', H', W') tubelets, flattened in this order

    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        """(B, num_patches) scores: the rank of each tubelet, nearest the focus highest."""
        T, H, W = self._grid
        if num_patches != T * H * W:
            raise ValueError(f"grid {self._grid} does not match {num_patches} patches")
        ys = (torch.arange(H, dtype=torch.float64) + 0.5) / H - self.centre_y
        xs = (torch.arange(W, dtype=torch.float64) + 0.5) / W - self.centre_x
        distance = (ys[:, None] ** 2 + xs[None, :] ** 2).expand(T, H, W).reshape(-1)
        # Exact ties broken by a seeded draw: sort by the draw, then stably by distance.
        draw = torch.rand(num_patches, generator=torch.Generator().manual_seed(self.seed), dtype=torch.float64)
        order = draw.argsort()
        order = order[distance[order].argsort(stable=True)]  # nearest first
        rank = torch.empty(num_patches, dtype=torch.float32)
        rank[order] = -torch.arange(num_patches, dtype=torch.float32)
        return rank.to(clips.video.device).expand(clips.batch_size, -1)
