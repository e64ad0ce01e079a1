"""``tokbench ls``, ``preview`` and ``viz``: what is registered, what a dataset looks like, what a
method keeps."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tokbench.cli import cli
from tokbench.errors import TokbenchError
from tokbench.report.text import text_table

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


