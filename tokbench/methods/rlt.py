"""``rlt``: Run-Length Tokenization (Choudhury et al., "Don't Look Twice: Faster Video
Transformers with Run-Length Tokenization", NeurIPS 2024).

Reference: rccchoudhury/rlt ``src/models/static_token_utils.py`` (batched_find_idxs_to_keep)
and ``src/models/tokenizer.py`` (@69ec8b4).

Before the transformer, on normalised pixels: a tubelet is dropped when it repeats the
tubelet before it at the same place, i.e. when the mean absolute difference between the
*last* frame of tubelet j+1 and the *first* frame of tubelet j, averaged over the patch and
the channels, is at most τ. The first temporal slice is always kept; kept tubelets keep
their original position embeddings; only they are embedded. The number kept varies per
clip. Upstream packs all clips into one sequence with xformers' block-diagonal attention;
tokbench offers ``batching="split"`` (each clip at its own length: packing without a
variable-length kernel, the default) and ``batching="pad"`` (pad to the longest clip, mask
the padding). On videomae_s on the CPU at P = 0.5, batch 8, split ran 1.25x and 1.09x
faster than pad in two runs of benchmarks/realized_speedup.py; on a GPU, measure first.

P-Ratio mapping: τ is calibrated on training clips so that
the mean kept fraction is as close to P as the clips allow; τ and the kept-fraction
distribution are in :meth:`describe`. P below 1/T' (the forced first slice) is
unreachable. ``tau=...`` fixes τ instead (the official default is 0.1; P is then a label).

Not implemented: the optional learned length embedding (off by default upstream, and
absent from off-the-shelf checkpoints). Note for whoever adds it: upstream computes run
lengths in (h, w, t) order but adds them to tokens in (t, h, w) order (rccchoudhury/rlt
``src/models/static_token_utils.py``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from tokbench.errors import TokbenchError, UnreachableError
from tokbench.methods.base import Method
from tokbench.methods.registry import register_method
from tokbench.tokens import Clips

__all__ = ["RLT", "tubelet_differences", "calibrate_threshold", "padded_indices"]


def tubelet_differences(video: Tensor, tubelet: int, patch: int) -> Tensor:
    """RLT's change score of every tubelet: (B, C, T, H, W) -> (B, T', H', W').

    Slice 0 is +inf (always kept); slice j >= 1 is mean |frame[j*t + t - 1] - frame[(j-1)*t]|
    over each p x p patch and the channels (frame 2j+1 against frame 2j-2 for t = 2).
    """
    B, C, T, H, W = video.shape
    later = video[:, :, 2 * tubelet - 1 :: tubelet].float()  # last frame of tubelets 1..T'-1
    earlier = video[:, :, : T - tubelet : tubelet].float()  # first frame of tubelets 0..T'-2
    d = F.avg_pool3d((later - earlier).abs(), kernel_size=(1, patch, patch)).mean(dim=1)  # (B, T'-1, H', W')
    first = torch.full_like(d[:, :1], torch.inf)
    return torch.cat([first, d], dim=1)


def padded_indices(keep: Tensor) -> Tensor:
    """(B, N) bool keep mask -> (B, K_max) kept positions in (t, h, w) order, -1 = padding."""
    counts = keep.sum(dim=1)
    k_max = max(int(counts.max()), 1)
    # Stable sort puts kept positions first, in order; the rest become padding.
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)[:, :k_max]
    valid = torch.arange(k_max, device=keep.device)[None] < counts[:, None]
    return order.masked_fill(~valid, -1)


def calibrate_threshold(diffs: Tensor, p_ratio: float) -> tuple[float, Tensor]:
    """τ whose mean kept fraction over ``diffs`` (n, T', H', W') is closest to ``p_ratio``.

    Returns (τ, per-clip kept fractions (n,)). Tokens are kept when d > τ; ties in d make
    some fractions unreachable, so the closest achievable one is taken.

    Raises:
        UnreachableError: ``p_ratio`` below the forced first slice, 1/T'.
    """
    n, T = diffs.shape[:2]
    floor = 1.0 / T
    if p_ratio < floor - 1e-9:
        raise UnreachableError(
            f"rlt: P-Ratio {p_ratio:g} is below {floor:g}: the first of the {T} temporal slices is always kept"
        )
    rest = diffs[:, 1:].reshape(-1)
    values = torch.unique(rest)  # ascending; candidate thresholds
    kept_rest = rest.numel() - torch.searchsorted(rest.sort().values, values, right=True)
    want = (p_ratio - floor) / (1 - floor) * rest.numel()
    # Keeping everything (τ below every difference) is a candidate too.
    taus = torch.cat([values.new_tensor([-1.0]), values])
    kept = torch.cat([kept_rest.new_tensor([rest.numel()]), kept_rest])
    tau = float(taus[(kept.double() - want).abs().argmin()])
    return tau, (diffs > tau).flatten(1).float().mean(dim=1)


@register_method("rlt")
class RLT(Method):
    """Run-length tokenization: drop tubelets that repeat the previous one.

    Args:
        p_ratio: target mean kept fraction (τ calibrated on training clips).
        tau: fixed threshold in normalised-pixel units instead of calibration (upstream
            default 0.1), or ``None``.
        batching: ``split`` (clip by clip at its own length) or ``pad`` (one padded batch).
    """

    embeds = "kept"
    cost_depends_on_content = True
    cost_set_by_token_counts = True  # clips that keep as many tubelets cost the same

    def __init__(self, *, p_ratio: float = 1.0, tau: float | None = None, batching: str = "split") -> None:
        super().__init__(p_ratio=p_ratio)
        if batching not in ("split", "pad"):
            raise TokbenchError(f"rlt: batching must be 'split' or 'pad', got {batching!r}")
        self.batching = self.variable_length = batching
        if tau is not None and (isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau)):
            raise TokbenchError(f"rlt: tau must be a finite number or None, got {tau!r}")
        self.tau = None if tau is None else float(tau)
        self.needs_calibration = tau is None
        self._tau: float | None = self.tau
        self._state: dict[str, Any] = {} if tau is None else {"tau": self.tau, "calibrated": False}
        self._tubelet: int | None = None  # geometry, from setup
        self._patch: int | None = None

    def setup(self, backbone) -> None:
        T = backbone.config.grid[0]
        if self.p_ratio < 1.0 / T - 1e-9 and self.tau is None:
            raise UnreachableError(
                f"rlt: P-Ratio {self.p_ratio:g} is below {1 / T:g}: the first of the {T} temporal slices is always kept"
            )
        self._tubelet, self._patch = backbone.config.tubelet_size, backbone.config.patch_size

    def calibrate(self, videos: Tensor) -> None:
        """Fit τ on (n, C, T, H, W) normalised training clips."""
        if self.tau is not None:
            return
        if self._tubelet is None:
            raise TokbenchError("rlt: setup(backbone) must run before calibrate()")
        diffs = torch.cat([tubelet_differences(v, self._tubelet, self._patch) for v in videos.split(16)])
        tau, fractions = calibrate_threshold(diffs, self.p_ratio)
        self._tau = tau
        q = torch.tensor([0.1, 0.5, 0.9], dtype=fractions.dtype)
        self._state = {
            "tau": tau, "calibrated": True, "calibration_clips": int(fractions.numel()),
            "kept_fraction_mean": fractions.mean().item(), "kept_fraction_std": fractions.std(unbiased=False).item(),
            "kept_fraction_min": fractions.min().item(), "kept_fraction_max": fractions.max().item(),
            "kept_fraction_p10_p50_p90": torch.quantile(fractions, q).tolist(),
        }

    def describe(self) -> dict[str, Any]:
        return dict(self._state)

    def keep_mask(self, video: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B, N) bool, True for the tubelets RLT keeps."""
        if self._tau is None:
            raise TokbenchError("rlt: calibrate() on training clips (or a fixed tau) is needed before use")
        keep = tubelet_differences(video, self._tubelet, self._patch) > self._tau  # (B, T', H', W')
        # The first slice is kept whatever τ: its +inf score alone does not do it, since τ is
        # compared in float32, where a τ above 3.4e38 is +inf too (and inf > inf is False).
        keep[:, 0] = True
        return keep.flatten(1)

    def before_embed(self, clips: Clips, num_patches: int) -> Tensor | None:
        if clips.video.is_meta:
            raise TokbenchError("rlt: token counts depend on content; count FLOPs on real clips")
        return padded_indices(self.keep_mask(clips.video))
