"""Token-reduction methods build on the backbone–method contract (:mod:`tokbench.hooks`:
:class:`Method`, its identity hooks, :func:`keep_count`, :func:`top_k_indices`), re-exported
here. :class:`SelectionMethod` is the shortcut for methods that only score tokens: the
framework keeps the top ``keep_count(N, p_ratio)`` with one rounding rule and one tie-break.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

from torch import Tensor

from tokbench.hooks import IDENTITY, Method, keep_count, top_k_indices
from tokbench.tokens import Clips, Tokens

__all__ = ["Method", "SelectionMethod", "keep_count", "top_k_indices", "IDENTITY"]


class SelectionMethod(Method):
    """A method that scores patch tokens once and keeps the top ``keep_count(N, p_ratio)``.

    Set ``scores_need_tokens = False`` when the scores depend only on the clip (random
    drop, pixel cues, a separate selector network): selection then happens before the
    patch embedding and only the kept tubelets are embedded (``embeds = "kept"``).
    """

    scores_need_tokens: ClassVar[bool] = True

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        cls.embeds = "all" if cls.scores_need_tokens else "kept"

    @abstractmethod
    def scores(self, clips: Clips, tokens: Tokens | None, num_patches: int) -> Tensor:
        """(B, num_patches) scores, higher = keep. ``tokens`` is ``None`` when
        ``scores_need_tokens`` is False."""

    def before_embed(self, clips: Clips, num_patches: int) -> Tensor | None:
        if self.scores_need_tokens:
            return None
        scores = self.scores(clips, None, num_patches)
        return top_k_indices(scores, keep_count(num_patches, self.p_ratio))

    def after_embed(self, tokens: Tokens, clips: Clips) -> Tokens:
        if not self.scores_need_tokens:
            return tokens
        scores = self.scores(clips, tokens, tokens.n_patches)
        return tokens.keep(top_k_indices(scores, keep_count(tokens.n_patches, self.p_ratio)))
