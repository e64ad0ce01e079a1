"""Where tokbench caches what it can recompute (FLOP counts, generated synthetic clips):
``$TOKBENCH_CACHE``, or ``~/.cache/tokbench``. No tokbench imports: every layer may ask."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """``$TOKBENCH_CACHE`` or ``~/.cache/tokbench``."""
    return Path(os.environ.get("TOKBENCH_CACHE") or Path.home() / ".cache" / "tokbench")
