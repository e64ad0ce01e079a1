"""The one seam between measuring and training: the ``lp`` and ``ft`` protocols (LookWhen's
two settings: a linear probe on the reduced tokens, fine-tuning with the reduction on) train
before a cell is evaluated. ``tokbench.benchmark`` reaches ``tokbench.train`` only here, and
only when a cell asks for one of them (``eval`` trains nothing)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from tokbench.errors import TokbenchError

__all__ = ["PROTOCOLS", "training_settings", "adapt"]

PROTOCOLS = ("eval", "lp", "ft")


def training_settings(protocol: str) -> dict[str, Any] | None:
    """The training settings a protocol's cells are measured with (part of their id);
    ``None`` for ``eval``.

    Raises:
        TokbenchError: an unknown protocol.
    """
    if protocol not in PROTOCOLS:
        raise TokbenchError(f"unknown protocol {protocol!r}: choose from {', '.join(PROTOCOLS)}")
    if protocol == "eval":
        return None
    from tokbench.train.protocols import FT_CONFIG, LP_CONFIG

    return asdict({"lp": LP_CONFIG, "ft": FT_CONFIG}[protocol])


def adapt(protocol: str, model, method, train_set, *, device=None):
    """The model to evaluate under ``protocol``: ``model`` itself for ``eval``, else the
    trained probe or fine-tuned copy (:func:`tokbench.train.protocols.adapt`)."""
    if protocol == "eval":
        return model
    from tokbench.train.protocols import adapt as train_and_adapt

    return train_and_adapt(protocol, model, method, train_set, device=device)
