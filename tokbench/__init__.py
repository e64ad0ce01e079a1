"""tokbench: a benchmark suite for video token reduction.

The public API is imported lazily, so ``import tokbench`` (and the CLI's start-up, and
plotting) does not import torch until a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = {
    "Method": "tokbench.methods",
    "SelectionMethod": "tokbench.methods",
    "register_method": "tokbench.methods",
    "build_method": "tokbench.methods",
    "METHODS": "tokbench.methods",
    "Tokens": "tokbench.tokens",
    "Clips": "tokbench.tokens",
    "create_backbone": "tokbench.backbones",
    "BACKBONES": "tokbench.backbones",
    "VideoViT": "tokbench.backbones",
    "VideoViTConfig": "tokbench.backbones",
    "count_flops": "tokbench.benchmark.flops",
    "measure_throughput": "tokbench.benchmark.timing",
    "Sweep": "tokbench.benchmark.runner",
    "run_sweep": "tokbench.benchmark.runner",
    "load_results": "tokbench.store",
    "load_predictions": "tokbench.predictions",
    "TokbenchError": "tokbench.errors",
    "create_dataset": "tokbench.data",
    "DATASETS": "tokbench.data",
    "headline_accuracy": "tokbench.report.tables",
    "best_at_budget": "tokbench.report.tables",
    "pareto_front": "tokbench.report.tables",
}

__all__ = [
    "BACKBONES",
    "DATASETS",
    "Clips",
    "METHODS",
    "Method",
    "SelectionMethod",
    "Sweep",
    "TokbenchError",
    "Tokens",
    "VideoViT",
    "VideoViTConfig",
    "best_at_budget",
    "build_method",
    "count_flops",
    "create_dataset",
    "create_backbone",
    "load_predictions",
    "headline_accuracy",
    "load_results",
    "measure_throughput",
    "pareto_front",
    "register_method",
    "run_sweep",
]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tokbench' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from tokbench.backbones import BACKBONES, VideoViT, VideoViTConfig, create_backbone
    from tokbench.benchmark.flops import count_flops
    from tokbench.benchmark.runner import Sweep, run_sweep
    from tokbench.benchmark.timing import measure_throughput
    from tokbench.data import DATASETS, create_dataset
    from tokbench.errors import TokbenchError
    from tokbench.methods import METHODS, Method, SelectionMethod, build_method, register_method
    from tokbench.predictions import load_predictions
    from tokbench.report.tables import best_at_budget, headline_accuracy, pareto_front
    from tokbench.store import load_results
    from tokbench.tokens import Clips, Tokens
