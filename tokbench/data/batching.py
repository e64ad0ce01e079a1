"""Batching dataset items for evaluation and training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["collate_clips", "ItemsAt"]


class ItemsAt:
    """The items of ``dataset`` at ``positions`` (in that order), as a dataset: every other
    attribute (``card``, ``views``, ``num_verbs``, ...) is the dataset's, and items keep their
    own ``index``. ``missing`` (annotated videos without a file) is the dataset's unless given."""

    def __init__(self, dataset, positions: Sequence[int], *, missing: list[str] | None = None) -> None:
        self.dataset, self.positions = dataset, positions
        self.missing = list(getattr(dataset, "missing", [])) if missing is None else missing

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int):
        return self.dataset[self.positions[i]]

    def __getattr__(self, name: str):
        return getattr(self.dataset, name)

    def __repr__(self) -> str:
        return f"ItemsAt({self.dataset!r}, {len(self.positions)} items)"


def collate_clips(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """DataLoader ``collate_fn`` that drops items whose video failed to decode.

    Returns:
        ``video`` (B, ...) stacked or None when every item failed; ``label`` (B,) long or
        (B, num_classes) float, or None; ``verb``/``noun`` (B,) when present; ``id`` list;
        ``index`` (B,) long; ``skipped``: ids of the failed items.
    """
    ok = [it for it in items if "error" not in it]
    out: dict[str, Any] = {
        "id": [it["id"] for it in ok],
        "index": torch.tensor([it["index"] for it in ok], dtype=torch.long),
        "skipped": [it["id"] for it in items if "error" in it],
        "video": torch.stack([it["video"] for it in ok]) if ok else None,
        "label": None,
    }
    if ok:
        labels = [it["label"] for it in ok]
        out["label"] = torch.stack(labels) if isinstance(labels[0], Tensor) else torch.tensor(labels)
        for key in ("verb", "noun"):
            if key in ok[0]:
                out[key] = torch.tensor([it[key] for it in ok])
        for key, value in ok[0].items():  # per-clip training targets (LookWhen's distillation)
            if key not in out and isinstance(value, Tensor):
                out[key] = torch.stack([it[key] for it in ok])
    return out
