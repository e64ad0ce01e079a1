"""The shipped zoo: one tiny backbone per synthetic dataset, trained by tokbench itself.

Each ``<dataset>.safetensors`` (fp16) has a card ``<dataset>.json``: the command that
reproduces it, seed, data, training time, and accuracy on val and test with all tokens.
``check`` in the card is the accuracy on the first clips of the val split, which a test
re-measures from the shipped weights (:func:`tokbench.benchmark.evaluate.slice_check`).

This package only finds shipped files: it imports nothing of tokbench above the errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokbench.errors import CheckpointError, TokbenchError

__all__ = ["ZOO_DIR", "zoo_checkpoint", "zoo_card", "zoo_datasets", "zoo_artifact"]

ZOO_DIR = Path(__file__).resolve().parent


def zoo_datasets() -> list[str]:
    """Datasets with a shipped backbone."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.safetensors") if not p.stem.endswith(".fp32"))


def zoo_checkpoint(dataset: str) -> Path:
    """The shipped weights for ``dataset``.

    Raises:
        TokbenchError: no zoo model for that dataset.
    """
    path = ZOO_DIR / f"{dataset}.safetensors"
    if not path.exists():
        shipped = ", ".join(zoo_datasets()) or "none"
        raise TokbenchError(f"no zoo backbone for {dataset!r} (shipped: {shipped}); train one with "
                            f"'tokbench train backbone --dataset {dataset}' and pass --checkpoint")
    return path


def zoo_card(dataset: str) -> dict[str, Any]:
    return json.loads(zoo_checkpoint(dataset).with_suffix(".json").read_text())


def zoo_artifact(kind: str, dataset: str | None, *, suffix: str | None = None) -> Path:
    """The shipped ``kind`` artifact (e.g. a ``lite`` selector) of a synthetic dataset;
    ``suffix`` names one part of a method with several (LookWhen's ``selector``)."""
    if dataset is None:
        raise CheckpointError(f"the shipped {kind} artifacts are per synthetic dataset: pass --dataset, "
                              f"or give the method a file")
    path = ZOO_DIR / kind / (f"{dataset}.{suffix}.safetensors" if suffix else f"{dataset}.safetensors")
    if not path.exists():
        raise CheckpointError(f"no shipped {kind} artifact for {dataset!r}; train one with "
                              f"'tokbench train {kind} --dataset {dataset}' and pass its path")
    return path
