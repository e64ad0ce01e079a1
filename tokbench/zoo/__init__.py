"""The shipped zoo: one tiny backbone per synthetic dataset, trained by tokbench itself.

Each ``<dataset>.safetensors`` (fp16) has a card ``<dataset>.json``: the command that
reproduces it, seed, data, training time, and accuracy on val and test with all tokens.
``check`` in the card is the accuracy on the first clips of the val split, which a test
re-measures from the shipped weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokbench.errors import CheckpointError, TokbenchError

__all__ = ["ZOO_DIR", "zoo_checkpoint", "zoo_card", "zoo_datasets", "slice_check", "CHECK_CLIPS", "zoo_table_markdown",
           "zoo_artifact", "selectors_table_markdown", "zoo_teacher"]

ZOO_DIR = Path(__file__).resolve().parent
CHECK_CLIPS = 64


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


def slice_check(model, dataset: str, *, geometry: dict, device=None, clips: int = CHECK_CLIPS,
                method=None) -> dict[str, Any]:
    """Accuracy of ``model`` (all tokens, or under ``method``, already set up) on the first
    ``clips`` val clips: the card's ``check``, re-measured by the tests."""
    from tokbench.benchmark.evaluate import evaluate
    from tokbench.data import create_dataset
    from tokbench.methods import build_method

    ds = create_dataset(dataset, split="val", num_clips=clips, **geometry)
    metrics = evaluate(model, method or build_method("none"), ds, batch_size=64, device=device).metrics
    return {"split": "val", "clips": clips, **metrics}


def zoo_table_markdown() -> str:
    """The README's zoo table, generated from the cards (a test keeps the README in sync)."""
    lines = [
        "| dataset | metric | chance | val | test | random P=0.5 (val) | random P=0.1 (val) | training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset in zoo_datasets():
        card = zoo_card(dataset)
        metric = card["metric"]
        chance = "–" if card.get("chance") is None else f"{100 * card['chance']:.1f}"
        drop = card["val_random_drop"]
        lines.append(
            f"| `{dataset}` | {metric} | {chance} | {100 * card['val'][metric]:.1f} | {100 * card['test'][metric]:.1f} "
            f"| {100 * drop['0.5']:.1f} | {100 * drop['0.1']:.1f} | {card['train_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


def selectors_table_markdown() -> str:
    """The README's table of learned selectors (LITE, LITE++, LookWhen), from their cards:
    val accuracy in % at P = 0.1 / 0.3 / 0.5 where the card has it, and training time."""
    from tokbench.train.checkpoint import read_card

    lines = [
        "| dataset | LITE P=0.3/0.5 | LITE++ P=0.3/0.5 (difficulty model val, easy share) | LookWhen P=0.1/0.3/0.5 "
        "| selector + teacher weights P=0.1/0.3/0.5 | random P=0.1/0.3/0.5 | selector top-30 % overlap | training |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pct(values: dict, keys: tuple[str, ...]) -> str:
        return " / ".join(f"{100 * values[k]:.1f}" for k in keys)

    for dataset in zoo_datasets():
        lite = read_card(zoo_artifact("lite", dataset))
        pp = read_card(zoo_artifact("lite++", dataset))
        image = read_card(zoo_artifact("image-teacher", dataset))
        sel = read_card(zoo_artifact("lookwhen", dataset, suffix="selector"))
        ext = read_card(zoo_artifact("lookwhen", dataset, suffix="extractor"))
        acc = ext["val_accuracy"]
        minutes = sum(c["train_seconds"] for c in (lite, pp, image, sel, ext)) / 60
        lines.append(
            f"| `{dataset}` | {pct(lite['val_accuracy']['lite'], ('0.3', '0.5'))} "
            f"| {pct(pp['val_accuracy']['lite++'], ('0.3', '0.5'))} ({100 * pp['val'][pp['metric']]:.1f}, "
            f"{100 * pp['val_confidence_bands']['above_tau2']:.0f} %) "
            f"| {pct(acc['lookwhen'], ('0.1', '0.3', '0.5'))} | {pct(acc['selector+teacher'], ('0.1', '0.3', '0.5'))} "
            f"| {pct(acc['random'], ('0.1', '0.3', '0.5'))} | {100 * sel['val_overlap']['0.3']['selector']:.0f} % "
            f"| {minutes:.1f} min |"
        )
    return "\n".join(lines)


def zoo_teacher(dataset: str, *, trainer: str):
    """The shipped backbone of a synthetic dataset, for the trainers of learned methods:
    (its card, the model frozen in eval mode, the clip geometry ``{"frames", "size"}``).

    Raises:
        TokbenchError: no zoo backbone for ``dataset``.
    """
    from tokbench.backbones import create_backbone

    if dataset not in zoo_datasets():
        raise TokbenchError(f"train {trainer} works on the synthetic suite's zoo backbones; "
                            f"no zoo backbone for {dataset!r}")
    card = zoo_card(dataset)
    model = create_backbone(card["backbone"], checkpoint=zoo_checkpoint(dataset),
                            num_classes=card["config"]["num_classes"]).eval()
    model.requires_grad_(False)
    return card, model, {"frames": card["data"]["frames"], "size": card["data"]["size"]}
