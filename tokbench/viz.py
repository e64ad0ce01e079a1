"""``tokbench viz``: which tokens a method keeps (or merges) on one clip.

The LookWhen paper's diving figure (kept tokens shown, the rest faded) and ToMe's merge
visualisation (each merge group painted with its mean colour) for every method, from the
same run path as ``tokbench run``: the method is built, bound, set up and (RLT) calibrated
exactly as for a cell, then the clip goes through :meth:`VideoViT.trace_tokens`, which
tracks which original patches each final token holds.

:func:`token_groups` runs the model (torch); :func:`paint`, :func:`draw` and :func:`draw_grid`
only touch numpy arrays and matplotlib; :func:`report_pictures` draws every method of a report
on one clip as one grid.
"""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokbench.benchmark.runner import Sweep, _prepared_method, _Shared, plan
from tokbench.data.base import IMAGENET_MEAN, IMAGENET_STD
from tokbench.data.batching import collate_clips
from tokbench.data.labels import target_weights
from tokbench.data.preview import label_text
from tokbench.errors import TokbenchError
from tokbench.store import output_file

__all__ = ["Selection", "token_groups", "paint", "draw", "draw_grid", "select_on_clip", "caption", "report_pictures",
           "report_grid"]

#: Dropped patches are blended this far towards white (the kept ones stay as they are).
FADE = 0.75


@dataclass(frozen=True)
class Selection:
    """Where each original patch ended up after the last block.

    Attributes:
        groups: (T', H', W') int, the final token holding each patch (0 .. tokens - 1), or
            -1 for a patch no token holds (dropped).
        tokens: patch tokens leaving the last block.
        merged: some token holds more than one patch (a merging method).
    """

    groups: np.ndarray
    tokens: int
    merged: bool

    @property
    def num_patches(self) -> int:
        return int(self.groups.size)

    @property
    def kept_patches(self) -> int:
        return int((self.groups >= 0).sum())


def token_groups(source, grid: tuple[int, int, int]) -> Selection:
    """Selection of one clip from its tracked ``source`` (N, N0) (prefix rows included,
    zero) in a (T', H', W') tubelet grid with N0 = T' * H' * W'.

    A patch belongs to the token holding the largest share of it (merges add whole rows,
    so each patch sits in exactly one token); a patch no token holds is dropped (-1).
    """
    import torch

    source = source.float()
    held = source.sum(dim=0) > 0  # (N0,)
    rows = source.sum(dim=1) > 0  # (N,) tokens that hold a patch (not prefix, not padding)
    owner = source.argmax(dim=0)  # (N0,) index among all N rows
    # Renumber owners 0 .. tokens - 1 in order of their rows.
    rank = torch.cumsum(rows.long(), dim=0) - 1
    groups = torch.where(held, rank[owner], torch.full_like(owner, -1))
    merged = bool((source > 0).sum(dim=1).max() > 1)
    return Selection(groups=groups.reshape(grid).cpu().numpy(), tokens=int(rows.sum()), merged=merged)


def paint(frames: np.ndarray, selection: Selection, *, patch: int) -> np.ndarray:
    """Draw a selection onto the first frame of each tubelet.

    Args:
        frames: (T', H, W, 3) RGB in [0, 1], one frame per tubelet time step.
        selection: its groups (T', H / patch, W / patch).
        patch: patch size in pixels.

    Returns:
        (T', H, W, 3): for a selection, kept patches unchanged and dropped ones faded towards
        white by :data:`FADE`; for a merging method, every patch of a group painted with the
        group's mean colour (over all its patches, across time), group borders darkened.
    """
    groups = selection.groups
    Tq, Hq, Wq = groups.shape
    if frames.shape[:3] != (Tq, Hq * patch, Wq * patch):
        raise ValueError(f"frames {frames.shape} do not fit groups {groups.shape} with patch {patch}")
    # (T', H', W', patch, patch, 3) patch view
    tiles = frames.reshape(Tq, Hq, patch, Wq, patch, 3).transpose(0, 1, 3, 2, 4, 5).copy()
    dropped = groups < 0
    tiles[dropped] = tiles[dropped] * (1 - FADE) + FADE
    if selection.merged:
        flat = groups.reshape(-1)
        means = tiles.reshape(flat.size, -1, 3).mean(axis=1)  # (N0, 3) mean colour of each patch
        n = int(flat.max()) + 1 if (flat >= 0).any() else 0
        sums = np.zeros((n, 3))
        counts = np.zeros(n)
        held = flat >= 0
        np.add.at(sums, flat[held], means[held])
        np.add.at(counts, flat[held], 1)
        colour = sums / np.maximum(counts, 1)[:, None]
        painted = tiles.reshape(flat.size, patch, patch, 3)
        painted[held] = colour[flat[held]][:, None, None, :]
        tiles = painted.reshape(tiles.shape)
        # Darken the right / bottom edge of a patch whose neighbour is in another group.
        right = np.zeros_like(groups, dtype=bool)
        right[:, :, :-1] = groups[:, :, :-1] != groups[:, :, 1:]
        below = np.zeros_like(groups, dtype=bool)
        below[:, :-1, :] = groups[:, :-1, :] != groups[:, 1:, :]
        tiles[right, :, -1] *= 0.35
        tiles[below, -1, :] *= 0.35
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(frames.shape)


def draw(frames: np.ndarray, selection: Selection, out: str | Path, *, patch: int, title: str) -> Path:
    """Two rows, the clip's frames and the method's tokens on them; writes a PNG.

    Raises:
        OutputError: ``out`` is a folder, or a file is in the way of its folder.
    """
    import matplotlib

    out = output_file(out)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    painted = paint(frames, selection, patch=patch)
    columns = frames.shape[0]
    fig, axes = plt.subplots(2, columns, figsize=(1.25 * columns + 0.9, 3.1), squeeze=False)
    for c in range(columns):
        for r, image in enumerate((frames[c], painted[c])):
            ax = axes[r, c]
            ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, c].set_title(f"tubelet {c}", fontsize=7)
    axes[0, 0].set_ylabel("clip", fontsize=8)
    axes[1, 0].set_ylabel("merged" if selection.merged else "kept", fontsize=8)
    fig.suptitle("\n".join(textwrap.wrap(title, 110)), fontsize=8)
    fig.subplots_adjust(left=0.05, right=0.995, top=0.8, bottom=0.02, wspace=0.04, hspace=0.06)
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return out


def draw_grid(frames: np.ndarray, rows: list[tuple[str, Selection]], out: str | Path, *, patch: int,
              title: str) -> Path:
    """One picture for several methods on one clip: the clip's frames on top (once), then one
    row per method with its tokens on the frames (:func:`paint`), labelled on the left with
    the method and what it keeps; writes a PNG.

    Args:
        frames: (T', H, W, 3) RGB in [0, 1], one frame per tubelet time step.
        rows: (method label, its selection on this clip) per row, in order.

    Raises:
        OutputError: ``out`` is a folder, or a file is in the way of its folder.
    """
    import matplotlib

    from tokbench.store import output_file

    out = output_file(out)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = frames.shape[0]
    cell = 0.62  # inches per frame
    left = 1.35  # room for the row labels
    height = cell * (len(rows) + 1) + 0.5
    fig, axes = plt.subplots(len(rows) + 1, columns, figsize=(left + cell * columns, height), squeeze=False)
    images = [("clip", frames)] + [(label, paint(frames, selection, patch=patch)) for label, selection in rows]
    for r, (label, painted) in enumerate(images):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow(np.clip(painted[c], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_linewidth(0.4)
        if r == 0:
            text = "clip"
        else:
            selection = rows[r - 1][1]
            kept = (f"{selection.tokens} tokens\n(merged)" if selection.merged
                    else f"{selection.kept_patches} of {selection.num_patches}")
            text = f"{label}\n{kept}"
        axes[r, 0].set_ylabel(text, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
    for c in range(columns):
        axes[0, c].set_title(f"tubelet {c}", fontsize=6.5, pad=2)
    width = left + cell * columns
    lines = textwrap.wrap(title, int(width * 72 / (7.5 * 0.6)))
    fig.suptitle("\n".join(lines), fontsize=7.5, y=1 - 0.06 / height, va="top")
    top = 1 - (0.22 + 0.13 * len(lines)) / height
    fig.subplots_adjust(left=left / (left + cell * columns), right=0.995, top=top, bottom=0.01, wspace=0.04,
                        hspace=0.06)
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return out


def report_pictures(specs: list[str], dataset: str, p_ratio: float, out: str | Path, *,
                    progress=None) -> tuple[Path | None, list[str], list[str]]:
    """Every method spec's tokens on clip 0 of ``dataset`` at ``p_ratio``, as one grid picture
    (:func:`draw_grid`) for a report.

    Methods that ignore P (the full model) and methods not registered (an unloaded plug-in)
    are not drawn; a method that cannot reach ``p_ratio`` is listed as skipped.

    Args:
        progress: called with each method's caption once it is drawn.

    Returns:
        (the PNG, or None when no method could be drawn; a caption per drawn method; the
        method specs skipped because ``p_ratio`` is unreachable).
    """
    import torch

    from tokbench.errors import UnreachableError
    from tokbench.methods import METHODS, parse_method_spec
    from tokbench.store import output_file

    output_file(out, make=False)  # a file in the way: one error now, not after running every method
    rows, captions, skipped, frames, facts = [], [], [], None, None
    drawable = [s for s in specs if (n := parse_method_spec(s)[0]) in METHODS and METHODS.get(n).uses_p_ratio]
    if not drawable:
        return None, captions, skipped
    # One plan and one backbone and dataset for every method (an unreachable P is raised when
    # a cell's method is prepared, not by the plan).
    sweep = _picture_sweep(tuple(drawable), p_ratio, dataset, backbone="synth_tiny", checkpoint="zoo")
    shared = _Shared(sweep, torch.device("cpu"))
    for cell in plan(sweep):
        try:
            frames, selection, facts = _select(cell, sweep, shared, clip=0)
        except UnreachableError:
            skipped.append(cell.method_spec)
            continue
        rows.append((facts["method_id"], selection))
        captions.append(caption(facts, selection, dataset=dataset, p_ratio=p_ratio))
        if progress is not None:
            progress(captions[-1])
    if not rows:
        return None, captions, skipped
    title = f"What each method keeps at P = {p_ratio:g}: {dataset} {facts['clip_id']} ({facts['label']})"
    return draw_grid(frames, rows, out, patch=facts["patch"], title=title), captions, skipped


def select_on_clip(spec: str, p_ratio: float, dataset: str, *, clip: int = 0, backbone: str = "synth_tiny",
                   checkpoint: str | None = "zoo", data_root: str | None = None,
                   split: str | None = None) -> tuple[np.ndarray, Selection, dict]:
    """Run method ``spec`` at ``p_ratio`` on clip ``clip`` of ``dataset`` the way ``tokbench
    run`` would (same model, bind, setup and calibration), tracking token sources.

    Returns:
        frames (T', H, W, 3) in [0, 1] (the first frame of each tubelet, first view),
        the :class:`Selection`, and facts for a caption (``method_id``, ``label``, ``clip_id``,
        ``split``, ``patch``).

    Raises:
        TokbenchError: bad names, an unreachable P, a clip index out of range.
    """
    import torch

    sweep = _picture_sweep((spec,), p_ratio, dataset, backbone=backbone, checkpoint=checkpoint,
                           data_root=data_root, split=split)
    cell = plan(sweep)[0]  # one cell (P = 1 for methods that ignore P)
    return _select(cell, sweep, _Shared(sweep, torch.device("cpu")), clip=clip)


def _picture_sweep(specs: tuple[str, ...], p_ratio: float, dataset: str, *, backbone: str, checkpoint: str | None,
                   data_root: str | None = None, split: str | None = None) -> Sweep:
    return Sweep(backbones=(backbone,), methods=specs, p_ratios=(p_ratio,), metrics=("accuracy",),
                 device="cpu", dtype="fp32", checkpoint=checkpoint, datasets=(dataset,),
                 data_root=data_root, split=split)


def _select(cell, sweep: Sweep, shared: _Shared, *, clip: int) -> tuple[np.ndarray, Selection, dict]:
    """:func:`select_on_clip` for a planned cell, with the run's shared models and data."""
    import torch

    dataset = cell.dataset
    data = shared.dataset(cell)
    if not 0 <= clip < len(data):
        raise TokbenchError(f"--clip {clip} is out of range: {dataset}/{data.split} has {len(data)} clips")
    with warnings.catch_warnings():
        # A clip that does not decode warns (an evaluation counts and goes on); here it is
        # the error below, said once, not a raw Python warning followed by the error.
        warnings.simplefilter("ignore")
        item = data[clip]
    batch = collate_clips([item])
    if batch["video"] is None:
        reason = f": {item['error']}" if item.get("error") else ""
        raise TokbenchError(f"clip {clip} ({item.get('id')}) of {dataset}/{data.split} could not be read{reason}; "
                            "pick another with --clip")
    video = batch["video"]
    video = video[:, 0] if video.dim() == 6 else video  # first view
    method = _prepared_method(cell, sweep, shared)
    model = method.model(shared.model(cell)).eval()
    labels = None
    if method.privileged:
        labels = target_weights(data.card.task, batch["label"], model.config.num_classes,
                                num_verbs=getattr(data, "num_verbs", None), verbs=batch.get("verb"),
                                nouns=batch.get("noun"))
    with torch.inference_mode():
        tokens = model.trace_tokens(video, method, clip_ids=batch["index"] * getattr(data, "views", 1), labels=labels)
    config = model.config
    selection = token_groups(tokens.source[0], config.grid)
    frames = video[0, :, :: config.tubelet_size].permute(1, 2, 3, 0).numpy()  # (T', H, W, C)
    frames = np.clip(frames * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN), 0, 1)
    facts = {"method_id": cell.method_id, "label": label_text(data.card, item), "clip_id": item["id"],
             "split": data.split, "patch": config.patch_size}
    return frames, selection, facts


def caption(facts: dict, selection: Selection, *, dataset: str, p_ratio: float) -> str:
    """One line under the picture: method, P, tokens, clip."""
    what = (f"{selection.tokens} tokens hold {selection.kept_patches} of {selection.num_patches} patches"
            if selection.merged else f"{selection.kept_patches} of {selection.num_patches} tokens kept")
    return (f"{facts['method_id']} at P = {p_ratio:g}: {what} after the last block — "
            f"{dataset} {facts['clip_id']} ({facts['label']})")


def report_grid(df, out_dir: str | Path, *, dataset: str | None = None, p_ratio: float = 0.5,
                progress=None) -> tuple[Path | None, list[str], str]:
    """``tokbench report``'s selection pictures: every method spec of the results ``df`` on
    clip 0 of a synthetic dataset, as one grid ``viz_grid.png`` in ``out_dir`` (the pictures
    run the model, which only the zoo provides offline).

    Args:
        dataset: the clip's dataset [default: synth-gesture if reported, else the first
            reported zoo dataset].

    Returns:
        (the PNG or None, a caption per method, a note saying which clip, or why there is none).

    Raises:
        TokbenchError: an unknown ``dataset`` (did-you-mean).
    """
    from tokbench.zoo import zoo_datasets

    reported = sorted(df["dataset"].dropna().unique()) if "dataset" in df else []
    zoo = set(zoo_datasets())
    if dataset is not None:
        from tokbench.data import DATASETS

        dataset = DATASETS.canonical(dataset)  # an unknown name: did-you-mean, exit 2
    if dataset is None:
        dataset = "synth-gesture" if "synth-gesture" in reported else next((d for d in reported if d in zoo), None)
    if dataset is None or dataset not in zoo:
        return None, [], ("No selection pictures: they run the model, and only the synthetic suite's zoo models are "
                          "found offline; draw one with 'tokbench viz --checkpoint ...'.")
    ok = df[df["status"] == "ok"] if "status" in df else df
    specs = sorted(set(ok["method_id"].dropna())) if "method_id" in ok else []
    path, captions, skipped = report_pictures(specs, dataset, p_ratio, Path(out_dir) / "viz_grid.png", progress=progress)
    note = (f"Clip 0 of {dataset} at P = {p_ratio:g} (`tokbench viz --method M --dataset {dataset} --p-ratio "
            f"{p_ratio:g}` draws one method): the top row is the clip (one frame per tubelet), then one row per "
            "method with the tokens left after the last block, dropped ones faded, merge groups in their mean colour.")
    if skipped:
        note += f" Not drawn (P = {p_ratio:g} unreachable): {', '.join(skipped)}."
    return path, captions, note
