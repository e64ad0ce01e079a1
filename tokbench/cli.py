"""``tokbench``: the command-line interface, a thin layer over the library.

Every command parses and validates its options, calls library functions, and prints a
summary. Bad input gets one line on stderr and exit status 2 (``--debug`` shows the
traceback). Heavy imports (torch, pandas) happen inside commands, so ``--help`` is fast
and ``plot`` never imports torch.
"""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from pathlib import Path

import click

from tokbench.benchmark.spec import DEFAULT_P
from tokbench.errors import TokbenchError, TokbenchWarning
from tokbench.report.text import text_table

#: Seeds feed torch generators, which take 64 bits; 63, so that no two seeds share a stream.
SEED = click.IntRange(0, 2**63 - 1)


class TokbenchGroup(click.Group):
    """A click group whose errors are one line and exit status 2."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in argv
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning  # results warnings as one tokbench line
                code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = code if isinstance(code, int) else 0
        except click.exceptions.NoArgsIsHelpError as e:  # bare `tokbench`: show the help
            click.echo(e.ctx.get_help())
            code = 0
        except click.UsageError as e:  # bad options, including click's own validation
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            click.echo(f"tokbench: error: {_one_line(e.format_message())}{hint}", err=True)
            code = 2
        except TokbenchError as e:
            if debug:
                raise
            click.echo(f"tokbench: error: {_one_line(str(e))}", err=True)
            code = 2
        except click.ClickException as e:
            e.show()
            code = e.exit_code
        except click.Abort:
            click.echo("Aborted!", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


_SHOW_WARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """tokbench's own warnings (a damaged results line, a duplicate method) as one
    ``tokbench: warning: ...`` line; other warnings as Python shows them."""
    if issubclass(category, TokbenchWarning):
        click.echo(f"tokbench: warning: {message}", err=True)
    else:
        _SHOW_WARNING(message, category, filename, lineno, file, line)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@click.group(cls=TokbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Load methods from a local module or .py file (repeatable; also TOKBENCH_PLUGINS=a,b). "
                   "Installed packages declaring the 'tokbench.methods' entry point load by themselves.")
@click.version_option(package_name="tokbench")
def cli(debug: bool, plugins: tuple[str, ...]) -> None:
    """tokbench: a benchmark suite for video token reduction.

    Puts token-reduction methods around the same video backbones, sweeps the keep ratio
    (P-Ratio = fraction of patch tokens kept), and measures FLOPs (fvcore convention:
    1 multiply-add = 1 FLOP) and throughput for every point.

    \b
    Example:
      tokbench run --backbone videomae_s --methods none,random --p-ratio 0.1:0.9
      tokbench report                  # your own runs (results/runs) -> reports/report.html
      tokbench --plugin my_methods run --smoke --methods mine,random   # your own method
    """
    import logging

    from tokbench.plugins import load_plugins

    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_plugins(plugins, warn=lambda line: click.echo(f"tokbench: warning: {line}", err=True))


# -- ls --------------------------------------------------------------------------------

@cli.command("ls")
@click.argument("what", type=click.Choice(["methods", "backbones", "datasets", "protocols"]))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="Show options and descriptions.")
def ls_cmd(what: str, fmt: str, verbose: bool) -> None:
    """List registered methods, backbones, datasets or evaluation protocols.

    \b
    Example:
      tokbench ls methods -v
      tokbench ls datasets -v          # each real dataset's protocol and the code it follows
      tokbench ls protocols -v
      tokbench ls backbones --format json
    """
    from tokbench.catalog import rows
    from tokbench.report.text import cards

    listed = rows(what, brief=fmt == "table" and not verbose)
    if fmt == "json":
        click.echo(json.dumps(listed, indent=2))
    elif verbose and what != "backbones":  # long descriptions: one card each, wrapped to the terminal
        click.echo(cards(listed))
    else:
        click.echo(text_table(listed))


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


# -- preview -------------------------------------------------------------------------------

@cli.command("preview")
@click.option("--dataset", required=True, help="Dataset name (see 'tokbench ls datasets').")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG file to write.")
@click.option("--split", default=None, help="Split to draw from [default: the dataset's eval split].")
@click.option("--clips", type=click.IntRange(1, 32), default=4, show_default=True, help="Clips (rows) to draw.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Data folder of a real dataset.")
def preview_cmd(dataset: str, out: Path, split: str | None, clips: int, data_root: Path | None) -> None:
    """Draw a contact sheet of a few clips of a dataset with their labels.

    \b
    Example:
      tokbench preview --dataset synth-motion --out motion.png
      tokbench preview --dataset ssv2 --data-root /data/ssv2 --out ssv2.png
    """
    from tokbench.data import DATASETS
    from tokbench.data.preview import contact_sheet

    card = DATASETS.get(dataset).card
    overrides = {"num_clips": max(clips, 8)} if card.kind == "synthetic" else {"limit": clips}
    path = contact_sheet(dataset, out, split=split or card.eval_split, clips=clips, root=data_root, **overrides)
    click.echo(str(path))


@cli.command("viz")
@click.option("--method", "spec", required=True, help="One method spec, e.g. lookwhen or 'tome(r=4)'.")
@click.option("--dataset", required=True, help="Dataset the clip comes from (see 'tokbench ls datasets').")
@click.option("--p-ratio", "p_ratio", required=True, help="One P-Ratio (fraction of tokens kept), e.g. 0.1.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="PNG file to write.")
@click.option("--clip", type=click.IntRange(min=0), default=0, show_default=True,
              help="Index of the clip in the evaluation split.")
@click.option("--backbone", default=None, help="Backbone variant [default: synth_tiny with the zoo weights for the "
                                               "synthetic suite].")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Local weights of the backbone [default: zoo for a synthetic dataset].")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Folder of a real dataset.")
@click.option("--split", default=None, help="Split to draw from [default: the dataset's evaluation split].")
def viz_cmd(spec, dataset, p_ratio, out, clip, backbone, checkpoint, data_root, split) -> None:
    """Draw which tokens a method keeps on one clip: the clip's frames (one per tubelet) and,
    under them, the kept tokens with the dropped ones faded (the LookWhen paper's diving
    figure) or, for merging methods (ToMe, vid-TLDR), each merge group after the last block
    painted with its mean colour. The method runs exactly as in 'tokbench run' (same
    weights, calibration and selection).

    \b
    Example:
      tokbench viz --method lookwhen --dataset synth-gesture --p-ratio 0.1 --out lookwhen.png
      tokbench viz --method tome --dataset synth-motion --p-ratio 0.5 --clip 3 --out tome.png
    """
    from tokbench.benchmark.spec import parse_p_ratios
    from tokbench.benchmark.suite import checkpoint_argument
    from tokbench.viz import caption, draw, select_on_clip

    ratios = parse_p_ratios(p_ratio)
    if len(ratios) != 1:
        raise TokbenchError(f"--p-ratio {p_ratio!r}: viz draws one P-Ratio, e.g. 0.1")
    from tokbench.zoo import zoo_datasets

    synthetic = dataset in zoo_datasets()
    if checkpoint is None and backbone is None and synthetic:
        checkpoint = "zoo"
    frames, selection, facts = select_on_clip(
        spec, ratios[0], dataset, clip=clip, backbone=backbone or "synth_tiny", checkpoint=checkpoint_argument(checkpoint),
        data_root=str(data_root) if data_root else None, split=split)
    title = caption(facts, selection, dataset=dataset, p_ratio=ratios[0])
    click.echo(str(draw(frames, selection, out, patch=facts["patch"], title=title)))
    click.echo(title, err=True)


# -- shared options ----------------------------------------------------------------------

def _sweep_options(func):
    options = [
        click.option("--backbone", "backbones", default=None,
                     help="Backbone variant(s), comma-separated (see 'tokbench ls backbones') "
                          "[default: synth_tiny for the synthetic suite, else videomae_s]."),
        click.option("--methods", default=None,
                     help="Method specs, comma-separated, e.g. 'none,random(seed=1)' [default: every registered method]."),
        click.option("--p-ratio", "p_ratio", default=None,
                     help="Fraction of patch tokens kept: 0.5 | 0.3,0.5,0.7 | 0.1:0.9 (step 0.1) | 0.1:0.9:0.2 "
                          f"[default: {DEFAULT_P}]."),
        click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
                     help="Local weights (VideoMAE .pth/.safetensors or a Hugging Face model folder), or 'zoo' "
                          "for the shipped backbone of each synthetic dataset [default: zoo for the synthetic suite]."),
        click.option("--num-classes", type=int, default=None, help="Head size (default: the backbone's or checkpoint's)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _launcher_options(func):
    """Options of ``tokbench run --launcher submitit``."""
    for option in reversed([
        click.option("--launcher", type=click.Choice(["local", "submitit"]), default="local", show_default=True,
                     help="local: measure in this process (or under torchrun, sharded). submitit: submit the cells "
                          "not yet stored as a SLURM job array; every job writes to the same --results."),
        click.option("--jobs", type=click.IntRange(min=1), default=None,
                     help="submitit: jobs in the array [default: one per 8 cells, at most 64]."),
        click.option("--slurm-partition", default=None, help="submitit: SLURM partition."),
        click.option("--slurm-gpus-per-node", type=click.IntRange(min=0), default=0, show_default=True,
                     help="submitit: GPUs per job."),
        click.option("--slurm-cpus-per-task", type=click.IntRange(min=1), default=8, show_default=True),
        click.option("--slurm-time", type=click.IntRange(min=1), default=240, show_default=True,
                     help="submitit: time limit per job, minutes."),
        click.option("--slurm-mem-gb", type=click.IntRange(min=1), default=None, help="submitit: memory per job."),
        click.option("--slurm-account", default=None, help="submitit: SLURM account."),
        click.option("--slurm-array-parallelism", type=click.IntRange(min=1), default=32, show_default=True,
                     help="submitit: jobs of the array running at once."),
        click.option("--submitit-folder", type=click.Path(path_type=Path), default=None,
                     help="submitit: job scripts and logs [default: RESULTS/submitit]."),
        click.option("--submitit-cluster", type=click.Choice(["auto", "slurm", "local", "debug"]), default="auto",
                     show_default=True, help="submitit: auto = SLURM when sbatch exists, else local processes."),
        click.option("--wait", is_flag=True, help="submitit: wait for the jobs, then print the summary."),
    ]):
        func = option(func)
    return func


# -- run ---------------------------------------------------------------------------------

@cli.command("run")
@_sweep_options
@click.option("--dataset", "datasets", default=None,
              help="Dataset(s) for accuracy, comma-separated (see 'tokbench ls datasets'). Without it: cost only.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None, help="Folder of a real dataset.")
@click.option("--split", default=None, help="Split to evaluate [default: each dataset's evaluation split].")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Evaluate only the first N videos (all of them in a smaller split).")
@click.option("--eval-batch-size", type=click.IntRange(min=1), default=None,
              help="Videos per accuracy batch [default: 64 on the synthetic suite's tiny clips, else 8].")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="DataLoader worker processes that decode videos [default: none for the synthetic suite; for a real "
                   "dataset one per CPU but one, at most 8].")
@click.option("--metrics", default=None,
              help="What to measure: accuracy, flops, throughput [default: all three with --dataset, else flops,throughput].")
@click.option("--protocol", type=click.Choice(["eval", "lp", "ft"]), default="eval", show_default=True,
              help="eval: weights as they are; lp: linear probe on the reduced tokens; ft: fine-tune with the reduction on.")
@click.option("--train-limit", type=click.IntRange(min=1), default=None,
              help="Training clips per cell for --protocol lp/ft [default: the whole train split].")
@click.option("--eval-protocol", default=None, metavar="NAME",
              help="Evaluation protocol of real datasets (frames, crops, view merging; see 'tokbench ls protocols') "
                   "[default: each dataset's, from its published evaluation code]. Not --protocol, which is eval/lp/ft.")
@click.option("--eval-views", default=None, metavar="TxS",
              help="Temporal clips x spatial crops per video for real datasets, e.g. 2x3 [default: the protocol's].")
@click.option("--eval-stride", type=click.IntRange(min=1), default=None,
              help="Frame stride of a strided protocol (videomae-k400, motionformer-epic, slowfast-charades).")
@click.option("--eval-aggregation", type=click.Choice(["logits", "softmax", "sigmoid-max"]), default=None,
              help="How a video's views merge: mean of logits, mean of softmax, per-class max of sigmoid "
                   "[default: the protocol's].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True, help="auto (bf16 autocast on CUDA, fp32 on CPU), fp32, bf16, fp16.")
@click.option("--batch-size", type=int, default=1, show_default=True, help="Clips per timed forward pass.")
@click.option("--warmup", type=int, default=3, show_default=True, help="Untimed forward passes before timing.")
@click.option("--repeats", type=int, default=10, show_default=True, help="Timed forward passes (median reported).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--seeds", "method_seeds", default=None, metavar="S1,S2,...",
              help="Seeds of the stochastic methods (those with a seed option, e.g. random): each that does not "
                   "set its seed runs once per seed; report and check pool them [default: 0,1,2 in the default run].")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Results folder; records are appended under runs/<machine>/.")
@click.option("--name", default="sweep", show_default=True, help="Label for this run's results file.")
@click.option("--retry-failed", is_flag=True, help="Re-run cells stored with status error or oom.")
@click.option("--clear-claims", is_flag=True,
              help="First remove every cell claim in RESULTS (claims of a sweep that died on another host, which "
                   "tokbench cannot check; never while another sweep runs on RESULTS).")
@click.option("--smoke", is_flag=True, help="A tiny slice: 16 clips per dataset, P 0.25 and 0.75, 2 timed repeats.")
@click.option("--compile", "compile_", is_flag=True,
              help="Time a torch.compile'd model (recorded as 'compiled'; accuracy and FLOPs are unchanged).")
@_launcher_options
def run_cmd(backbones, methods, p_ratio, checkpoint, num_classes, datasets, data_root, split, limit, eval_batch_size,
            workers, metrics, protocol, train_limit, eval_protocol, eval_views, eval_stride, eval_aggregation, device,
            dtype, batch_size, warmup, repeats, seed, method_seeds, results_dir, name, retry_failed, clear_claims, smoke,
            compile_,
            launcher, jobs, slurm_partition, slurm_gpus_per_node, slurm_cpus_per_task, slurm_time, slurm_mem_gb,
            slurm_account, slurm_array_parallelism, submitit_folder, submitit_cluster, wait) -> None:
    """Measure a sweep: datasets x backbones x methods x P-Ratios.

    With no options this is the benchmark on the embedded default: the six synthetic
    datasets, every registered method, P-Ratio 0.1:0.9, accuracy + FLOPs + throughput,
    with the zoo's backbones. Naming --backbone without --dataset measures cost only.

    Appends one record per cell to an append-only JSONL file under RESULTS/runs/ and
    flushes it at once; re-running the same command skips finished cells (resume).
    Methods that ignore P-Ratio (none) run once. Ends with a summary table.

    \b
    Example:
      tokbench run --backbone videomae_s --methods none,random --p-ratio 0.1:0.9 \\
                   --metrics flops,throughput --device cpu
      tokbench run --dataset synth-motion --backbone synth_tiny --checkpoint motion.safetensors
      tokbench run --dataset ssv2 --data-root /data/ssv2 --backbone videomae_b --checkpoint ssv2.pth
      tokbench run --dataset ssv2 ... --eval-views 1x1 --eval-aggregation logits   # a cheaper protocol variant
      torchrun --nproc-per-node 8 -m tokbench run --dataset ssv2 ...     # one evaluation, sharded
      tokbench run --dataset ssv2 ... --launcher submitit --slurm-partition gpu --slurm-gpus-per-node 1
    """
    from tokbench.benchmark.distributed import is_main_process, process_group_session
    from tokbench.benchmark.runner import plan, run_sweep
    from tokbench.benchmark.suite import RunOptions, sweep_from_options
    from tokbench.report.summary import run_summary, speed_warning
    from tokbench.store import output_folder

    if data_root is not None and not data_root.is_dir():
        raise TokbenchError(f"--data-root {data_root}: no such folder")
    resolved = sweep_from_options(
        RunOptions(backbones=backbones, methods=methods, p_ratio=p_ratio, checkpoint=checkpoint, datasets=datasets,
                   metrics=metrics, limit=limit, train_limit=train_limit, eval_batch_size=eval_batch_size,
                   seeds=method_seeds, name=name, smoke=smoke, repeats=repeats, warmup=warmup),
        device=device, dtype=dtype, batch_size=batch_size, seed=seed, num_classes=num_classes, split=split,
        data_root=str(data_root) if data_root else None, num_workers=workers, protocol=protocol, compile=compile_,
        eval_protocol=eval_protocol, eval_views=_parse_views(eval_views), eval_stride=eval_stride,
        eval_aggregation=eval_aggregation, command=shlex.join(["tokbench", *sys.argv[1:]]))
    for note in resolved.notes:
        click.echo(f"note: {note}", err=True)
    sweep = resolved.sweep
    cells = plan(sweep)  # validates everything before the store is touched
    output_folder(results_dir, "--results", make=False)  # a file in the way fails now, not after the first cell
    if clear_claims:
        from tokbench.claims import clear_claims as remove_claims

        click.echo(f"removed {remove_claims(results_dir)} cell claim(s) from {results_dir}", err=True)
    if launcher == "submitit":
        from tokbench.benchmark.launch import SlurmOptions, submit_sweep

        records, code = submit_sweep(
            sweep, cells, results_dir, retry_failed=retry_failed, jobs=jobs, folder=submitit_folder,
            cluster=None if submitit_cluster == "auto" else submitit_cluster, wait=wait,
            plugins=list(click.get_current_context().find_root().params.get("plugins") or ()),
            slurm=SlurmOptions(partition=slurm_partition, gpus_per_node=slurm_gpus_per_node,
                               cpus_per_task=slurm_cpus_per_task, timeout_min=slurm_time, mem_gb=slurm_mem_gb,
                               account=slurm_account, array_parallelism=slurm_array_parallelism),
            say=lambda line: click.echo(line, err=True))
        if records:
            click.echo(run_summary(records))
        return code
    main = is_main_process()  # under torchrun only rank 0 talks and writes
    if main:
        data = f"{', '.join(d for d in sweep.datasets if d)} x " if sweep.datasets != (None,) else ""
        click.echo(f"tokbench run: {len(cells)} cells ({data}{', '.join(sweep.backbones)} x {len(sweep.methods)} methods "
                   f"x {len(sweep.p_ratios)} P-Ratios), metrics {', '.join(sweep.metrics)}", err=True)
    from tokbench.report.progress import RunProgress

    progress = RunProgress()
    with process_group_session():
        try:
            result = run_sweep(sweep, results_dir=results_dir, retry_failed=retry_failed, progress=progress, cells=cells)
        finally:
            progress.close()
    if result.skipped:
        click.echo(f"skipped {result.skipped} cells already in {results_dir} (resume)", err=True)
    if result.claimed:
        click.echo(f"skipped {result.claimed} cells another running sweep on {results_dir} was measuring "
                   "(run this command again once it is done to measure any it did not finish)", err=True)
    if result.path:
        click.echo(f"wrote {len(result.records)} records to {result.path}", err=True)
    if not result.records and result.skipped:  # nothing left to measure: show what is stored
        from tokbench.report.check import latest_by_cell
        from tokbench.store import load_records

        keys = {c.key for c in cells}
        stored = [r for r in latest_by_cell(load_records(results_dir / "runs")).values() if r["cell_id"] in keys]
        if stored:
            click.echo(run_summary(stored))
    if result.records:
        click.echo(run_summary(result.records))
        if speed_warning(result.records):
            click.echo(f"tokbench: warning: {speed_warning(result.records)}", err=True)


def _parse_views(text: str | None) -> tuple[int, int] | None:
    """``--eval-views 5x3`` -> (5, 3)."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise TokbenchError(f"--eval-views {text!r}: give temporal clips x spatial crops, e.g. 5x3 or 2x3")
    return int(parts[0]), int(parts[1])


# -- flops -------------------------------------------------------------------------------

@cli.command("flops")
@_sweep_options
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def flops_cmd(backbones, methods, p_ratio, checkpoint, num_classes, fmt) -> None:
    """Print FLOPs per view of methods across P-Ratios (nothing is stored).

    GFLOPs follow fvcore's convention (1 multiply-add = 1 FLOP, as the papers report),
    with fused attention counted by tokbench's SDPA handle. Counts are cached per
    (geometry, method, P) in $TOKBENCH_CACHE (default ~/.cache/tokbench).

    \b
    Example:
      tokbench flops --backbone videomae_b --methods none,random --p-ratio 0.1:0.9 --format csv
    """
    from tokbench.benchmark.costs import cost_rows
    from tokbench.benchmark.flops import FLOPS_UNIT
    from tokbench.benchmark.spec import parse_p_ratios
    from tokbench.benchmark.suite import checkpoint_argument, split_names
    from tokbench.methods import METHODS, split_specs

    rows = cost_rows(split_names(backbones or "videomae_s"),
                     tuple(split_specs(methods)) if methods is not None else tuple(METHODS.names()),
                     tuple(parse_p_ratios(DEFAULT_P if p_ratio is None else p_ratio)),
                     checkpoint=checkpoint_argument(checkpoint), num_classes=num_classes)
    if fmt == "json":
        click.echo(json.dumps({"unit": FLOPS_UNIT, "rows": rows}, indent=2))
    elif fmt == "csv":
        import csv

        click.echo(f"# gflops: {FLOPS_UNIT}; embeds: tubelets through the patch embedding (all or kept)")
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        click.echo(f"GFLOPs: {FLOPS_UNIT}")
        click.echo(text_table(rows))


# -- check, report, plot -------------------------------------------------------------------

def _echo_lines(lines) -> None:
    for line in lines:
        click.echo(line, err=True)


@cli.command("check")
@click.option("--baseline", type=click.Path(path_type=Path), required=True,
              help="Folder of baseline records (e.g. results/baseline, made by 'tokbench run --smoke').")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True,
              help="Folder (or .jsonl file) of the current records; curated copies in its sub-folders are left out.")
@click.option("--accuracy-tol", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Largest allowed accuracy drop per cell (absolute, 0.01 = 1 point); CPU runs are deterministic.")
@click.option("--speed-band", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Allowed relative throughput drop, checked only when the device matches.")
@click.option("--no-speed", is_flag=True, help="Do not compare throughput (shared CI machines are noisy).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the Markdown report here.")
@click.option("--update", is_flag=True, help="Rewrite the baseline from the current records instead of checking "
              "(baseline cells the records lack are kept).")
@click.option("--prune", is_flag=True, help="With --update: drop the baseline cells the current records lack.")
def check_cmd(baseline, results_dir, accuracy_tol, speed_band, no_speed, out, update, prune):
    """Compare current results with a baseline, cell by cell (for CI).

    FLOPs, parameters and tokens must match exactly; accuracy may not drop by more than
    --accuracy-tol; throughput is compared only on the same device. A baseline cell with no
    current record is a regression; new cells are counted. Prints a Markdown table of the
    differences, then (on stderr) which runs, devices and revisions each side holds; exit
    status 1 on a regression, 0 otherwise.

    \b
    Example (what .ci/run does):
      tokbench run --smoke --results /tmp/now
      tokbench check --baseline results/baseline --results /tmp/now --no-speed
      tokbench check --baseline results/baseline --results /tmp/now --update   # accept the new numbers
      tokbench check --baseline results/baseline --results /tmp/now --update --prune   # ... and drop cells not run
    """
    from tokbench.report.check import compare, markdown, write_baseline
    from tokbench.report.selection import select_records
    from tokbench.store import output_file, output_folder

    if out is not None:
        output_file(out, "--out", suffix=".md", make=False)
    if prune and not update:
        raise TokbenchError("--prune only applies with --update")
    if update:
        output_folder(baseline, "--baseline", make=False)
    current, described = select_records(results_dir)
    if not current:
        raise TokbenchError(f"no records under --results {results_dir}: run 'tokbench run' first")
    if update:
        target, written, carried = write_baseline(baseline, current, results=results_dir, prune=prune)
        kept = f" (and {carried} cells of the old baseline that the results do not have)" if carried else ""
        click.echo(f"wrote {written} baseline cells to {target}{kept}")
        _echo_lines(["current: " + line if i == 0 else line for i, line in enumerate(described)])
        return 0
    if not baseline.exists():
        raise TokbenchError(f"--baseline {baseline}: no such folder (make one with --update)")
    reference, base_described = select_records(baseline)
    if not reference:
        raise TokbenchError(f"no records under --baseline {baseline}")
    findings, counts = compare(reference, current, accuracy_tol=accuracy_tol,
                               speed_band=None if no_speed else speed_band)
    report = markdown(findings, counts)
    click.echo(report, nl=False)
    if out is not None:
        output_file(out, "--out", suffix=".md").write_text(report)
    for side, lines in (("baseline", base_described), ("current", described)):
        _echo_lines([f"{side}: {line}" if i == 0 else line for i, line in enumerate(lines)])
    return 1 if counts["regressions"] else 0


_results_option = click.option(
    "--results", "results_dirs", type=click.Path(path_type=Path), multiple=True, default=[Path("results/runs")],
    show_default=True,
    help="Results folder (searched recursively for *.jsonl) or file; repeatable. The default holds your own runs. "
         "Under a folder, curated copies in sub-folders other than runs/ (results/synthetic, results/baseline under "
         "results) are left out: name them to use them.")


def _result_filters(func):
    """The options that pick a subset of the results (plot, report)."""
    for option in reversed([
        click.option("--datasets", default=None, help="Only these datasets (comma-separated)."),
        click.option("--methods", "methods_", default=None, help="Only these methods (registered names, comma-separated)."),
        click.option("--protocol", default=None, help="Only this protocol (eval, lp or ft)."),
        click.option("--backbone", default=None, help="Only these backbones (comma-separated)."),
        click.option("--run", "runs", default=None,
                     help="Only these runs: run ids or unique prefixes (comma-separated), or 'latest'."),
        click.option("--clips", default=None, help="Only accuracy cells evaluated on this many clips (comma-separated); "
                                                   "needed when a dataset mixes clip counts."),
        click.option("--speed-device", default=None,
                     help="Only throughput measured on this device (its name as printed, e.g. 'AMD EPYC'); the other "
                          "records keep their accuracy and FLOPs."),
    ]):
        func = option(func)
    return func


def _figure_options(func):
    """How the figures look (plot, report)."""
    for option in reversed([
        click.option("--x", "x_axis", type=click.Choice(["gflops", "relative", "log"]), default="gflops",
                     show_default=True, help="GFLOPs axis: linear, relative (% of the full model's GFLOPs) or log."),
        click.option("--highlight", default=None,
                     help="Methods to draw in colour (names or specs, comma-separated); the others grey."),
    ]):
        func = option(func)
    return func


def _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device):
    from tokbench.report.selection import select_results

    try:
        clip_counts = [int(c) for c in _split(clips)] if clips else None
    except ValueError:
        raise TokbenchError(f"--clips {clips!r}: give whole numbers, e.g. --clips 500") from None
    return select_results(list(results_dirs), runs=_split(runs) if runs else None, clips=clip_counts,
                          speed_device=speed_device, dataset=_split(datasets) if datasets else None,
                          method=_split(methods_) if methods_ else None, protocol=(protocol,) if protocol else None,
                          backbone=_split(backbone) if backbone else None)


@cli.command("report")
@_results_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where to write report.md, report.html, their figures and tables/.")
@_result_filters
@_figure_options
@click.option("--budgets", default="10,30,50", show_default=True,
              help="Leaderboard budgets: percents of the full model's GFLOPs (comma-separated).")
@click.option("--viz/--no-viz", default=True, show_default=True,
              help="Draw what each method keeps (tokbench viz) on a clip of --viz-dataset, as one grid.")
@click.option("--viz-dataset", default=None,
              help="Synthetic dataset of the pictures [default: synth-gesture if reported, else the first].")
@click.option("--viz-p-ratio", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="P-Ratio of the pictures (0.5 is reachable by every built-in method on the zoo models).")
def report_cmd(results_dirs, out_dir: Path, datasets, methods_, protocol, backbone, runs, clips, speed_device, x_axis,
               highlight, budgets, viz, viz_dataset, viz_p_ratio) -> None:
    """Write a report as Markdown (report.md) and as one self-contained HTML page
    (report.html, figures embedded): contents, the figures, a leaderboard (the best method
    at 10/30/50 % of the full model's GFLOPs, ties stated), which method Pareto-dominates
    which, speedup at equal accuracy, a grid of what each method keeps on one clip, a
    section per dataset (its figure, method x P tables of accuracy and cost, unreachable
    cells with their reason) and the provenance (runs, commands, clips, seeds, devices,
    revisions). Every table is also written as CSV, Markdown and LaTeX under OUT/tables.
    Prints which records were used (stderr).

    \b
    Example:
      tokbench report                                    # your own runs (results/runs) -> reports/
      tokbench report --results results/synthetic --out reports/synthetic   # the committed report
      tokbench report --highlight lookwhen,lite --x relative --budgets 10,25,50
    """
    from tokbench.report.document import write_report
    from tokbench.report.significance import pooled_with_oracle
    from tokbench.viz import report_grid

    try:
        shares = tuple(float(b) for b in _split(budgets))
    except ValueError:
        raise TokbenchError(f"--budgets {budgets!r}: give percents, e.g. 10,30,50") from None
    selection = _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device)
    frame, better = pooled_with_oracle(selection.frame, results_dirs)
    picture, captions, note = (report_grid(frame, out_dir, dataset=viz_dataset, p_ratio=viz_p_ratio,
                                           progress=lambda line: click.echo(f"viz: {line}", err=True))
                               if viz else (None, [], None))
    path = write_report(frame, out_dir, source=", ".join(map(str, results_dirs)), selection=selection,
                        picture=picture, picture_captions=captions, picture_note=note, budgets=shares, x=x_axis,
                        highlight=_split(highlight) if highlight else (), better=better)
    click.echo(str(path))
    click.echo(str(path.with_suffix(".html")))
    _echo_lines(selection.describe())


@cli.command("plot")
@_results_option
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Where to write the figures (PNG and PDF).")
@_result_filters
@_figure_options
def plot_cmd(results_dirs, out_dir: Path, datasets, methods_, protocol, backbone, runs, clips, speed_device, x_axis,
             highlight) -> None:
    """Draw accuracy vs GFLOPs and accuracy vs throughput (a panel per dataset) and
    throughput vs GFLOPs (per backbone): a line per method through its P-Ratio points, the
    full model as a star, privileged methods (the oracle) dashed, each panel's Pareto front
    in grey, error bars where the records have intervals. Throughput figures are made per
    device. PNG and PDF, sized for a paper. Filters pick a subset of the results; prints
    which records were used (stderr).

    \b
    Example:
      tokbench plot --out reports                        # your own runs (results/runs)
      tokbench plot --methods lookwhen,lite,random,none --datasets synth-gesture,synth-motion
      tokbench plot --results results/synthetic --highlight lookwhen,rlt --x relative
    """
    from tokbench.report.plots import plot_all
    from tokbench.report.selection import newest_per_cell
    from tokbench.report.significance import pool_seeds
    from tokbench.store import output_folder

    output_folder(out_dir, "--out", make=False)
    selection = _select(results_dirs, datasets, methods_, protocol, backbone, runs, clips, speed_device)
    frame = pool_seeds(newest_per_cell(selection.frame))  # seed variants as one point (no torch here)
    for path in plot_all(frame, out_dir, x=x_axis, highlight=_split(highlight) if highlight else ()):
        click.echo(str(path))
    _echo_lines(selection.describe())


def main() -> None:
    cli.main(prog_name="tokbench")


if __name__ == "__main__":
    main()
