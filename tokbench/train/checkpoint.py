"""The one checkpoint format: weights in safetensors + a JSON card beside them.

``<stem>.safetensors`` holds the model's state dict (tokbench's native keys, loadable with
``create_backbone(..., checkpoint=path)``); ``<stem>.json`` is its card: how it was made
(command, seed, data), how long it took and how good it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

__all__ = ["save_checkpoint", "read_card", "card_path"]


def card_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_checkpoint(model: nn.Module, path: str | Path, card: dict[str, Any], *, dtype: torch.dtype | None = None) -> Path:
    """Write ``model``'s weights (optionally cast to ``dtype``, e.g. fp16 for the zoo) and its card."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"format": "tokbench"})
    tmp.replace(path)  # atomic: a crash never leaves half a checkpoint
    card_path(path).write_text(json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    return path


def read_card(weights: str | Path) -> dict[str, Any]:
    return json.loads(card_path(weights).read_text())
