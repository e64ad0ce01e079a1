"""Token-reduction methods. Built-ins are registered by the explicit imports below."""

from tokbench.methods.base import IDENTITY, Method, SelectionMethod, keep_count, top_k_indices
from tokbench.methods.registry import (
    METHODS,
    build_method,
    method_id,
    parse_method_spec,
    register_method,
    split_specs,
)

# Built-in methods register themselves on import (explicit, so a typo fails loudly).
from tokbench.methods import (  # noqa: F401  isort: skip
    cues, downsampling, lite, lite_pp, lookwhen, none, random_drop, rlt, sta, tome, vid_tldr,
)

__all__ = [
    "IDENTITY", "METHODS", "Method", "SelectionMethod", "build_method", "keep_count",
    "method_id", "parse_method_spec", "register_method", "split_specs", "top_k_indices",
]
