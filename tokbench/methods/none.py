"""``none`` (alias ``full``): the unreduced model, every token through every block."""

from __future__ import annotations

from tokbench.methods.base import Method
from tokbench.methods.registry import register_method

__all__ = ["NoReduction"]


@register_method("none", aliases=("full",))
class NoReduction(Method):
    """All tokens kept; the reference point of every plot. ``p_ratio`` is ignored."""

    uses_p_ratio = False
