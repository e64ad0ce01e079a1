"""``tokbench train ...``: the zoo backbones and the artifacts of the learned methods."""

from __future__ import annotations

from pathlib import Path

import click

from tokbench.cli import SEED, cli

# -- train -------------------------------------------------------------------------------

@cli.group("train")
def train_group() -> None:
    """Train models: zoo backbones, LITE selectors and difficulty models, LookWhen's teachers, selectors and extractors."""


@train_group.command("backbone")
@click.option("--dataset", required=True, help="Synthetic dataset to train on (see 'tokbench ls datasets').")
@click.option("--backbone", default="synth_tiny", show_default=True, help="Backbone variant to train from scratch.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Weights file (.safetensors; its card goes beside it) [default: checkpoints/<dataset>.safetensors].")
@click.option("--epochs", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--token-drop", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Fraction of batches trained with random token drop (robustness to missing tokens).")
@click.option("--train-clips", type=click.IntRange(min=1), default=None, help="Training clips [default: 2000].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--dtype", type=click.Choice(["fp32", "fp16"]), default="fp32", show_default=True,
              help="Precision of the saved weights (the zoo ships fp16).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def train_backbone_cmd(dataset, backbone, out, epochs, batch_size, lr, token_drop, train_clips, seed, dtype, device):
    """Train a tiny backbone from scratch on a synthetic dataset.

    Validates every epoch, keeps the best weights, and resumes if stopped (run the same
    command again). The card beside the weights records the command, seed, data, time and
    accuracy on val and test with all tokens.

    \b
    Example:
      tokbench train backbone --dataset synth-motion --epochs 20 --out checkpoints/motion.safetensors
    """
    from tokbench.benchmark.environment import resolve_device
    from tokbench.train.backbone import train_backbone
    from tokbench.train.loop import TrainConfig
    from tokbench.train.summaries import backbone_line

    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, token_drop=token_drop, seed=seed)
    out = out or Path("checkpoints") / f"{dataset}.safetensors"
    # Every option spelled out, so the card's command reproduces the model whatever the defaults become.
    command = (f"tokbench train backbone --dataset {dataset} --backbone {backbone} --epochs {epochs} "
               f"--batch-size {batch_size} --lr {lr:g} --token-drop {token_drop:g} --seed {seed} --dtype {dtype} "
               + (f"--train-clips {train_clips} " if train_clips else "") + f"--out {out}")
    card = train_backbone(dataset, out=out, backbone=backbone, config=config, device=resolve_device(device),
                          train_clips=train_clips, dtype=dtype, command=command)
    click.echo(backbone_line(out, card))


def _artifact_options(kind: str, dataset_help: str, *, epochs: int, lr: float):
    """The options of a trainer that writes one artifact per zoo dataset (lite, lite++, image-teacher)."""
    options = [
        click.option("--dataset", required=True, help=dataset_help),
        click.option("--out", type=click.Path(path_type=Path), default=None,
                     help="Weights file (.safetensors; its card goes beside it) "
                          f"[default: checkpoints/{kind}/<dataset>.safetensors]."),
        click.option("--epochs", type=click.IntRange(min=1), default=epochs, show_default=True),
        click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=lr, show_default=True),
        click.option("--seed", type=SEED, default=0, show_default=True),
    ]

    def wrap(func):
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


@train_group.command("lite")
@_artifact_options("lite", "Synthetic dataset whose zoo backbone the selector serves.", epochs=10, lr=1e-3)
def train_lite_cmd(dataset, out, epochs, lr, seed):
    """Train LITE's token selector for a zoo backbone (Hao et al., arXiv 2411.13626).

    Computes the oracle's token values (Grad-CAM on the true class) and the patch embeddings
    of every train and val clip with the shipped backbone, then fits the per-token MLP with
    BCE, keeping the epoch with the best val BCE. The card records the command, time, val
    BCE, and val accuracy of lite, random and the oracle at P = 0.3 and 0.5.

    \b
    Example:
      tokbench train lite --dataset synth-motion --out tokbench/zoo/lite/synth-motion.safetensors
    """
    from tokbench.train.lite import train_lite
    from tokbench.train.summaries import artifact_training, lite_line

    out, config, command = artifact_training("lite", dataset, out, epochs, lr, seed, batch_size=32, warmup_epochs=0.5)
    card = train_lite(dataset, out=out, config=config, command=command)
    click.echo(lite_line(out, card))


@train_group.command("lite++")
@_artifact_options("lite++", "Synthetic dataset whose LITE++ difficulty model to train.", epochs=12, lr=2e-3)
def train_lite_pp_cmd(dataset, out, epochs, lr, seed):
    """Train LITE++'s difficulty model (Hao et al., arXiv 2411.13626, §4.3).

    A two-block ViT on the half-resolution clip (the stand-in for the paper's MoViNet),
    trained from scratch with the task loss; its confidence (max softmax) picks each clip's
    token budget. The card records its val accuracy, how val clips fall in the confidence
    bands (< 0.1, 0.1-0.5, > 0.5), and LITE vs LITE++ on val at P = 0.3 and 0.5 with the
    shipped LITE selector.

    \b
    Example:
      tokbench train lite++ --dataset synth-motion --out tokbench/zoo/lite++/synth-motion.safetensors
    """
    from tokbench.train.lite_pp import train_difficulty
    from tokbench.train.summaries import artifact_training, lite_pp_line

    out, config, command = artifact_training("lite++", dataset, out, epochs, lr, seed, batch_size=32, warmup_epochs=1.0)
    card = train_difficulty(dataset, out=out, config=config, command=command)
    click.echo(lite_pp_line(out, card))


@train_group.command("image-teacher")
@_artifact_options("image-teacher", "Synthetic dataset whose frames the image teacher learns.", epochs=6, lr=1e-3)
def train_image_teacher_cmd(dataset, out, epochs, lr, seed):
    """Train the small image teacher LookWhen distils on the synthetic suite.

    An image ViT (the backbone's width and depth on single frames) trained to classify single
    frames with their clip's label; it stands in for DINOv3 (for real data, pass
    --image-teacher timm:NAME:WEIGHTS to 'tokbench train lookwhen' instead).

    \b
    Example:
      tokbench train image-teacher --dataset synth-motion --out tokbench/zoo/image-teacher/synth-motion.safetensors
    """
    from tokbench.train.image_teacher import train_image_teacher
    from tokbench.train.summaries import artifact_training, image_teacher_line

    out, config, command = artifact_training("image-teacher", dataset, out, epochs, lr, seed, batch_size=64,
                                              warmup_epochs=0.5)
    card = train_image_teacher(dataset, out=out, config=config, command=command)
    click.echo(image_teacher_line(out, card))


@train_group.command("lookwhen")
@click.option("--dataset", required=True, help="Synthetic dataset whose zoo backbone is the video teacher.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=Path("checkpoints/lookwhen"), show_default=True,
              help="Folder for <dataset>.selector.safetensors and <dataset>.extractor.safetensors (cards beside).")
@click.option("--image-teacher", default="zoo", show_default=True,
              help="'zoo' (the shipped small teacher), an image-teacher file, or timm:NAME:WEIGHTS (e.g. DINOv2).")
@click.option("--uniqueness-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Neighbours averaged in the uniqueness target (1 = nearest neighbour, the paper's choice).")
@click.option("--stage", type=click.Choice(["both", "selector", "extractor"]), default="both", show_default=True)
@click.option("--selector-epochs", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--extractor-epochs", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=SEED, default=0, show_default=True)
def train_lookwhen_cmd(dataset, out_dir, image_teacher, uniqueness_k, stage, selector_epochs, extractor_epochs, seed):
    """LookWhen's pre-training (Salamatian, Fuller et al., arXiv 2605.06809).

    Selection: the shallow selector (the teacher's first blocks on the clip downscaled 2x)
    learns token uniqueness, each token's image-teacher distance to its nearest neighbour
    across space and time. Extraction: the extractor (started from the zoo backbone, the
    video teacher) sees the selector's top-K tokens and is distilled to the video teacher's
    feature and the frame-normalised image teacher's video, frame and patch targets. The
    extractor card records val accuracy of lookwhen, the selector on the teacher, and random
    drop at P = 0.1, 0.3, 0.5.

    \b
    Example:
      tokbench train lookwhen --dataset synth-motion --out-dir tokbench/zoo/lookwhen
    """
    from tokbench.train.lookwhen import train_lookwhen
    from tokbench.train.loop import TrainConfig
    from tokbench.train.summaries import lookwhen_lines

    stages = ("selector", "extractor") if stage == "both" else (stage,)
    command = (f"tokbench train lookwhen --dataset {dataset} --out-dir {out_dir} --image-teacher {image_teacher} "
               f"--uniqueness-k {uniqueness_k} --stage {stage} --selector-epochs {selector_epochs} "
               f"--extractor-epochs {extractor_epochs} --seed {seed}")
    cards = train_lookwhen(
        dataset, out_dir=out_dir, image_teacher=image_teacher, k=uniqueness_k, stages=stages, command=command,
        selector_config=TrainConfig(epochs=selector_epochs, batch_size=32, lr=1e-3, token_drop=0.0,
                                    warmup_epochs=0.5, seed=seed),
        extractor_config=TrainConfig(epochs=extractor_epochs, batch_size=32, lr=3e-4, token_drop=0.0,
                                     warmup_epochs=0.5, seed=seed),
    )
    for line in lookwhen_lines(cards):
        click.echo(line)


