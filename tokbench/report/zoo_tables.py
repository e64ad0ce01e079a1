"""The README's tables of the shipped zoo and learned selectors, generated from their cards
(a test keeps the README in sync)."""

from __future__ import annotations

from tokbench.weights import read_card
from tokbench.zoo import zoo_artifact, zoo_card, zoo_datasets

__all__ = ["zoo_table_markdown", "selectors_table_markdown"]


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
