"""What ``tokbench train ...`` prints when a training ends: one line from each card, and the
settings + reproducing command of the trainers that write one artifact per zoo dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokbench.store import output_file
from tokbench.train.loop import TrainConfig

__all__ = ["artifact_training", "backbone_line", "lite_line", "lite_pp_line", "image_teacher_line", "lookwhen_lines"]


def artifact_training(kind: str, dataset: str, out: Path | None, epochs: int, lr: float, seed: int, *,
                      batch_size: int, warmup_epochs: float) -> tuple[Path, TrainConfig, str]:
    """(output path with its folder made, training settings, the command that reproduces
    them) of ``tokbench train KIND`` (lite, lite++, image-teacher)."""
    out = output_file(out or Path("checkpoints") / kind / f"{dataset}.safetensors", suffix=".safetensors")
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, token_drop=0.0, warmup_epochs=warmup_epochs,
                         seed=seed)
    command = f"tokbench train {kind} --dataset {dataset} --epochs {epochs} --lr {lr:g} --seed {seed} --out {out}"
    return out, config, command


def _at(values: dict[str, float], ratios: tuple[str, ...]) -> str:
    return "/".join(f"{100 * values[p]:.1f}" for p in ratios)


def backbone_line(out: Path, card: dict[str, Any]) -> str:
    metric = card["metric"]
    return (f"{out}: val {metric} {card['val'][metric]:.4f}, test {metric} {card['test'][metric]:.4f}, "
            f"random drop P=0.5 {card['val_random_drop']['0.5']:.4f}, P=0.1 {card['val_random_drop']['0.1']:.4f} "
            f"({card['train_seconds']:.0f} s)")


def lite_line(out: Path, card: dict[str, Any]) -> str:
    acc = card["val_accuracy"]
    return (f"{out}: val BCE {card['val_bce']:.4f}; val {card['metric']} at P=0.3/0.5: "
            + ", ".join(f"{k} {_at(v, ('0.3', '0.5'))}" for k, v in acc.items()) + f" ({card['train_seconds']:.0f} s)")


def lite_pp_line(out: Path, card: dict[str, Any]) -> str:
    acc, metric = card["val_accuracy"], card["metric"]
    return (f"{out}: difficulty model val {metric} {card['val'][metric]:.4f}; confidence bands "
            + ", ".join(f"{k} {100 * v:.0f}%" for k, v in card["val_confidence_bands"].items())
            + "; val at P=0.3/0.5: " + ", ".join(f"{k} {_at(v, ('0.3', '0.5'))}" for k, v in acc.items())
            + f" ({card['train_seconds']:.0f} s)")


def image_teacher_line(out: Path, card: dict[str, Any]) -> str:
    return f"{out}: val single-frame {card['metric']} {card['val_frames'][card['metric']]:.4f} ({card['train_seconds']:.0f} s)"


def lookwhen_lines(cards: dict[str, dict[str, Any]]) -> list[str]:
    ratios = ("0.1", "0.3", "0.5")
    lines = []
    if "selector" in cards:
        ov = cards["selector"]["val_overlap"]
        lines.append("selector: val top-K overlap with the uniqueness target at P=0.1/0.3/0.5: "
                     + "/".join(f"{100 * ov[p]['selector']:.0f}%" for p in ratios)
                     + " (random " + "/".join(f"{100 * ov[p]['random']:.0f}%" for p in ratios) + ")")
    if "extractor" in cards:
        acc, metric = cards["extractor"]["val_accuracy"], cards["extractor"]["metric"]
        lines.append(f"extractor: val {metric} at P=0.1/0.3/0.5: "
                     + ", ".join(f"{k} {_at(v, ratios)}" for k, v in acc.items()))
    return lines
