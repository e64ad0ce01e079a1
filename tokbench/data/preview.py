"""Contact sheets: a few clips of a dataset, one row per clip, with their labels."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from tokbench.data.base import DATASETS, IMAGENET_MEAN, IMAGENET_STD, create_dataset

__all__ = ["label_text", "contact_sheet"]


def label_text(card, item: dict) -> str:
    """Readable label of an item (class names where the card has them)."""
    classes = card.extra.get("classes")
    if card.task == "multilabel":
        on = np.flatnonzero(np.asarray(item["label"]) > 0).tolist()
        return "; ".join(classes[i] if classes else str(i) for i in on) or "(no event)"
    label = int(item["label"])
    return classes[label] if classes and label < len(classes) else str(label)


def contact_sheet(name: str, out: str | Path, *, split: str = "val", clips: int = 4, columns: int = 8,
                  root: str | Path | None = None, **overrides) -> Path:
    """Draw ``clips`` clips of dataset ``name`` as rows of ``columns`` evenly spaced frames
    with their labels; writes a PNG and returns its path.

    Raises:
        DataError: a real dataset none of whose videos decodes. OutputError: ``out`` is a
            folder, or a file is in the way of its folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tokbench.store import output_file

    card = DATASETS.get(name).card
    output_file(out, make=False)
    dataset = create_dataset(name, split=split, root=root, **overrides)
    if card.kind == "real":
        from tokbench.data.real import check_readable

        check_readable(dataset)  # DataError (one line) when no video decodes
    items = []
    for i in range(len(dataset)):  # videos that fail to decode are left out (with a warning)
        item = dataset[i]
        if "error" not in item:
            items.append(item)
        if len(items) == clips:
            break
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    rows = len(items)
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns + 1.6, 1.25 * rows + 0.5), squeeze=False)
    for r, item in enumerate(items):
        video = item["video"].numpy()
        video = video[0] if video.ndim == 5 else video  # first view
        T = video.shape[1]
        for c, t in enumerate(np.linspace(0, T - 1, columns).round().astype(int)):
            frame = np.clip(video[:, t].transpose(1, 2, 0) * std + mean, 0, 1)
            ax = axes[r, c]
            ax.imshow(frame, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={t}", fontsize=7)
        text = "\n".join(textwrap.wrap(label_text(card, item), 18))
        axes[r, 0].set_ylabel(f"{text}\n({item['id']})", fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(f"{name} ({split}): mirrors {card.mirrors}", fontsize=9)
    fig.subplots_adjust(left=0.16, right=0.99, top=0.9, bottom=0.02, wspace=0.05, hspace=0.12)
    out = output_file(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
