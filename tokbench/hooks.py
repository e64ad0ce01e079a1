"""The backbone–method contract, at the bottom of the layers: the hooks a token-reduction
method gives the shared backbone, their identity defaults (:data:`IDENTITY`), and the one
rounding rule and top-k helper every selection uses. The backbone imports only this; the
registered methods build on it (``tokbench.methods``).

A method is a class configured by typed keyword-only arguments (each stored as an attribute
of the same name). The backbone calls, in order:

==================  =======================================================================
hook                when and what
==================  =======================================================================
``validate``        with the backbone's config while the sweep is planned, before anything
                    runs: refuse options that do not fit it (a block past its depth).
``bind``            with the dataset's name (learned methods find their shipped artifacts).
``calibrate``       (only if ``needs_calibration``) with training clips, to fit a knob to P.
``setup``           with the backbone before the first forward (load artifacts, derive
                    schedules); FLOP counting sets up its own copy of the method on a
                    meta-device backbone, so this instance stays set up on the real one.
``input_video``     with the raw clips; may return a resized clip (whole tubelets).
``before_embed``    with the raw clips; may return (B, K) indices of the tubelets to embed.
``after_embed``     with the embedded ``Tokens``; may drop, reorder or pad them.
``after_attn``      in every block, between attention and MLP, with the keys or attention
                    probabilities the method asked for in ``attn_needs``; may merge tokens.
``after_block``     after each block's MLP, with what ``after_attn`` received.
==================  =======================================================================
"""

from __future__ import annotations

import inspect
import math
from abc import ABCMeta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from torch import Tensor

from tokbench.errors import TokbenchError
from tokbench.tokens import Clips, Tokens

if TYPE_CHECKING:
    from tokbench.backbones.vit import VideoViT, VideoViTConfig

__all__ = ["Method", "keep_count", "top_k_indices", "IDENTITY"]


def keep_count(n: int, p_ratio: float) -> int:
    """Tokens kept out of ``n`` at ``p_ratio``: round half up, at least 1.

    ``keep_count(1568, 0.7) == 1098`` and ``keep_count(1568, 0.1) == 157`` (VideoMAE's 1568
    tokens; LITE's 0.7 keeps 1098, arXiv 2411.13626 Tables 1-2). The tiny epsilon keeps 0.35 * 10 (= 3.4999999999999996 in
    floating point) rounding to 4 like the decimal it stands for.
    """
    return max(1, min(n, math.floor(n * p_ratio + 0.5 + 1e-9)))


def top_k_indices(scores: Tensor, k: int) -> Tensor:
    """(B, N) scores -> (B, k) indices of the k highest, sorted by position so that the
    kept tokens stay in their original (t, h, w) order."""
    return scores.topk(k, dim=1, sorted=False).indices.sort(dim=1).values


class Method(metaclass=ABCMeta):  # noqa: B024 - ABCMeta enforces SelectionMethod.scores
    """A token-reduction method. Override only the hooks you need; defaults are identity.

    Args:
        p_ratio: fraction of patch tokens kept (LITE's P-Ratio; LookWhen's sparsity is
            1 - p_ratio), in (0, 1].
    """

    name: ClassVar[str] = "identity"
    #: ``"keys"`` (ToMe), ``"probs"`` (vid-TLDR, forces explicit attention) or ``None``.
    attn_needs: ClassVar[Literal["keys", "probs"] | None] = None
    #: Uses the true label (LITE's oracle); reports mark such methods.
    privileged: ClassVar[bool] = False
    #: ``False`` for methods that ignore ``p_ratio`` (``none``): a sweep runs them once.
    uses_p_ratio: ClassVar[bool] = True
    #: How the FLOP count treats the patch embedding: "all" tubelets or only "kept" ones.
    embeds: ClassVar[Literal["all", "kept"]] = "all"
    #: Token counts depend on the clip (RLT): FLOPs are counted per clip on real clips and
    #: throughput is timed on real clips.
    cost_depends_on_content: ClassVar[bool] = False
    #: Two clips with the same tokens per block cost the same (FLOPs are traced once per count).
    cost_set_by_token_counts: ClassVar[bool] = False
    #: ``calibrate`` must run on training clips before use (RLT fits its threshold to P).
    needs_calibration: ClassVar[bool] = False
    #: The final average pool weights each token by its size (ToMe's MAE patch); ``False``
    #: for a plain mean over tokens (vid-TLDR's UMT code).
    size_weighted_pool: ClassVar[bool] = True
    #: How the backbone runs a batch whose clips keep different numbers of tokens: ``pad``
    #: (one padded batch, padding masked out) or ``split`` (clips of equal length run
    #: together, each group without padding).
    variable_length: Literal["pad", "split"] = "pad"
    #: Options added after cells were stored, with their defaults: an option at its default
    #: here is left out of the cell id, so the cells stored before it existed keep their ids.
    identity_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, p_ratio: float = 1.0) -> None:
        if isinstance(p_ratio, bool) or not isinstance(p_ratio, (int, float)) or not 0 < p_ratio <= 1:
            raise TokbenchError(f"p_ratio must be a number in (0, 1], got {p_ratio!r}")
        self.p_ratio = float(p_ratio)

    # -- configuration -----------------------------------------------------------------
    @property
    def proportional_attention(self) -> bool:
        """Add log(token size) to attention logits (ToMe); off unless a method turns it on."""
        return False

    @classmethod
    def param_names(cls) -> list[str]:
        """Keyword-only configuration arguments of ``__init__`` other than ``p_ratio``."""
        sig = inspect.signature(cls.__init__)
        return [
            n for n, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "p_ratio"
        ]

    def params(self) -> dict[str, Any]:
        """The resolved configuration (defaults included), without ``p_ratio``."""
        return {n: getattr(self, n) for n in self.param_names()}

    def extra_params(self) -> int:
        """Parameters the method adds to the backbone's (selector networks)."""
        return 0

    def networks(self) -> list:
        """The ``nn.Module`` s the method runs (selectors), so that FLOP tracing sees their
        weights as parameters. Valid after ``setup``."""
        return []

    def decision_networks(self) -> list:
        """Networks run on the clip (B, C, T, H, W) whose output only decides how much to
        compute (LITE++'s difficulty model picks a budget). Their result leaves the traced
        graph as Python numbers, so a trace cannot see them: FLOP counting traces each on
        the clip separately and adds it. Valid after ``setup``."""
        return []

    def model(self, backbone: VideoViT) -> VideoViT:
        """The network this method runs: ``backbone`` itself (every training-free method and
        LITE), or a model of the backbone's architecture that the method ships with its own
        weights (LookWhen's extractor, distilled from the backbone). The runner evaluates,
        times and adapts (lp/ft) what this returns; FLOPs are the same by construction.
        Valid after ``setup``."""
        return backbone

    def describe(self) -> dict[str, Any]:
        """What the method resolved for this P (a merge schedule, a calibrated threshold),
        stored with every record as ``method_state``. Valid after ``setup``/``calibrate``."""
        return {}

    def attention_needs(self, layer: int) -> Literal["keys", "probs"] | None:
        """What ``after_attn`` needs in block ``layer``; blocks that need nothing keep the
        fused attention kernel. Defaults to ``attn_needs`` in every block."""
        return self.attn_needs

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.params(), "p_ratio": self.p_ratio}.items())
        return f"{type(self).__name__}({args})"

    # -- hooks -------------------------------------------------------------------------
    def bind(self, *, dataset: str | None, memo: dict | None = None) -> None:  # noqa: B027 - an optional hook
        """Told which dataset is evaluated, before ``setup`` (learned methods pick their
        shipped artifact for a synthetic dataset). ``memo`` is a dict owned by the runner and
        shared by the cells of one (dataset, model): per-clip results that do not depend on
        P (the oracle's values) may be kept in it under keys that include the clip id."""

    def calibrate(self, videos: Tensor) -> None:  # noqa: B027 - an optional hook
        """Fit P-dependent knobs on (n, C, T, H, W) normalised training clips (only called
        when ``needs_calibration``)."""

    def validate(self, config: VideoViTConfig) -> None:  # noqa: B027 - an optional hook
        """Raise :class:`TokbenchError` if an option cannot work on a backbone of ``config``
        (a block index past its depth, more merges than it has tokens). The runner calls it
        while planning, so such options are refused before anything runs instead of being
        stored as an ``error`` cell; ``setup`` should call it too, for library users. Only
        the geometry is known here (no weights, no clips); a P the method cannot reach is
        ``setup``'s ``UnreachableError``, not this."""

    def setup(self, backbone: VideoViT) -> None:  # noqa: B027 - an optional hook
        """Called with the backbone before the first forward pass."""

    def input_video(self, clips: Clips) -> Tensor:
        """The (B, C, T, H, W) clip the backbone tokenizes: ``clips.video`` itself, or a
        resized one whose sides are whole tubelets (the backbone reads its grid)."""
        return clips.video

    def before_embed(self, clips: Clips, num_patches: int) -> Tensor | None:
        """(B, K) indices of the tubelets to embed, or ``None`` to embed all. In a
        variable-length batch, -1 marks padding (the backbone masks it out)."""
        return None

    def after_embed(self, tokens: Tokens, clips: Clips) -> Tokens:
        return tokens

    def after_attn(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        """``attn`` is the keys (B, heads, N, d) or probabilities (B, heads, N, N) asked for
        in ``attn_needs``, else ``None``."""
        return tokens

    def after_block(self, layer: int, tokens: Tokens, attn: Tensor | None) -> Tokens:
        """After block ``layer``'s MLP. ``attn`` is what ``after_attn`` received: it
        describes the tokens that entered the block's attention, so it only fits ``tokens``
        if ``after_attn`` left them as they were."""
        return tokens



#: The full model: every hook is the identity.
IDENTITY = Method()
