"""The one weights format: weights in safetensors + a JSON card beside them (no tokbench
imports above the errors: the backbones, the methods' artifacts and the trainers all read
and write through here).

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

from tokbench.errors import CheckpointError

__all__ = ["save_checkpoint", "read_card", "card_path", "read_weights", "load_weights", "regular_file"]


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


def read_weights(path: str | Path, what: str, *, card_keys: tuple[str, ...] | None = None
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The state dict in ``path`` and, when ``card_keys`` is given, its card, which must hold
    those keys. Anything unreadable or missing is one :class:`CheckpointError` naming ``what``
    (e.g. "LITE selector") and the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    with_card = "" if card_keys is None else " and its card"
    # Both reads block forever on a FIFO or never end on /dev/zero: refused first.
    regular_file(path, what)
    if card_keys is not None:
        regular_file(card_path(path), f"the card of {what}")
    try:
        state = load_file(str(path))
        card = None if card_keys is None else read_card(path)
    except (OSError, ValueError, SafetensorError) as e:  # a damaged file raises SafetensorError
        raise CheckpointError(f"cannot read {what} {path}{with_card}: {e}") from None
    missing = [k for k in card_keys or () if k not in card]
    if missing:
        raise CheckpointError(f"cannot read {what} {path}{with_card}: the card has no {', '.join(missing)}")
    return state, card


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], *, mismatch: str,
                 dtype: torch.dtype = torch.float32) -> nn.Module:
    """``module`` with ``state`` loaded (cast to ``dtype``), in eval mode. Keys or shapes that
    do not fit raise :class:`CheckpointError` ``"<mismatch>: <torch's first line>"``."""
    try:
        module.load_state_dict({k: v.to(dtype) for k, v in state.items()})
    except RuntimeError as e:
        raise CheckpointError(f"{mismatch}: {str(e).splitlines()[0]}") from None
    return module.eval()


def regular_file(path: str | Path, what: str) -> Path:
    """``path``, unless it exists and is neither a regular file nor a folder: a FIFO, a
    device such as /dev/zero or a socket is refused before anything opens it, since reading
    one blocks forever or never ends (torch, safetensors and the weights hash read to the
    end). A missing path or a folder is left to the caller's own message.

    Raises:
        CheckpointError: ``cannot read <what> <path>: ...``.
    """
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise CheckpointError(f"cannot read {what} {path}: not a regular file (a FIFO, device or socket)")
    return path
