"""The dataset contract: cards, the registry, and what an item holds.

Every dataset, synthetic or real, is created by name::

    ds = tokbench.create_dataset("synth-motion", split="val")
    ds = tokbench.create_dataset("ssv2", split="val", root="/data/ssv2")

and yields dicts:

=========  ===================================================================================
key        value
=========  ===================================================================================
``video``  float32, normalised with ImageNet mean/std: (C, T, H, W) for one view, or
           (V, C, T, H, W) when the eval protocol takes V = temporal clips x spatial crops
``label``  ``int`` class (single-label); float multi-hot (num_classes,) (multi-label);
           ``int`` action id for verb+noun datasets, which also carry ``verb`` and ``noun``
``id``     ``str``, stable sample id (a video id, or ``<split>-<index>`` for synthetic clips)
``index``  ``int``, position in the dataset (stable clip id for per-clip seeding)
=========  ===================================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tokbench.errors import TokbenchError
from tokbench.registry import Registry

__all__ = [
    "DatasetCard", "DATASETS", "register_dataset", "create_dataset", "IMAGENET_MEAN", "IMAGENET_STD",
    "DataError",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Task = Literal["single", "multilabel", "verb_noun"]


class DataError(TokbenchError):
    """A missing data folder or annotation file, or a dataset with no readable video."""


@dataclass(frozen=True)
class DatasetCard:
    """What a dataset is, for `tokbench ls datasets -v`, reports and records.

    Attributes:
        name: registered name (``synth-motion``, ``kinetics400``).
        kind: ``synthetic`` (generated, no download) or ``real`` (read from ``root``).
        mirrors: the real dataset it is or behaves like.
        task: ``single`` (top-1/top-5), ``multilabel`` (mAP) or ``verb_noun`` (verb, noun
            and action top-1).
        num_classes: classes; for ``verb_noun`` the number of actions (verb x noun pairs
            in the label space), with ``num_verbs``/``num_nouns`` set.
        decides: what decides the label.
        stresses: what the dataset stresses in a token-reduction method.
        splits: the splits it has, with the published names.
        eval_split: the split accuracy is reported on (``val``; ``test`` where the
            published evaluation split is called so, as Diving48 and Charades).
        views: default eval views (temporal clips, spatial crops): those of ``protocol``.
        protocol: the default evaluation protocol (:mod:`tokbench.data.protocols`) of a
            real dataset, whose source is the published evaluation code it follows;
            ``synthetic`` for the generated suite (one clip, logits).
        files: annotation files a real dataset needs under its root (for error messages).
    """

    name: str
    kind: Literal["synthetic", "real"]
    mirrors: str
    task: Task
    num_classes: int
    decides: str
    stresses: str
    splits: tuple[str, ...] = ("train", "val", "test")
    eval_split: str = "val"
    views: tuple[int, int] = (1, 1)
    protocol: str = "synthetic"
    num_verbs: int | None = None
    num_nouns: int | None = None
    files: tuple[str, ...] = ()
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return {"single": "top1", "multilabel": "mAP", "verb_noun": "action_top1"}[self.task]


@dataclass(frozen=True)
class _Entry:
    card: DatasetCard
    factory: Callable[..., Any]


DATASETS: Registry[_Entry] = Registry("dataset")


def register_dataset(card: DatasetCard) -> Callable:
    """Decorator on a factory ``(split: str, root: Path | None, **overrides) -> Dataset``."""

    def wrap(factory: Callable) -> Callable:
        DATASETS.register(card.name, _Entry(card, factory))
        return factory

    return wrap


def create_dataset(name: str, *, split: str, root: str | Path | None = None, **overrides: Any):
    """Create a registered dataset.

    Args:
        name: a registered dataset (``tokbench ls datasets``).
        split: one of the card's splits (``train``, ``val``, ``test``).
        root: the data folder of a real dataset (its published layout); unused by
            synthetic datasets.
        **overrides: dataset options (frames, size, views, seed, ...).

    Raises:
        UnknownNameError: unknown dataset. DataError: a missing folder or annotation file.
        TokbenchError: an unknown split or option.
    """
    entry = DATASETS.get(name)
    if split not in entry.card.splits:
        raise TokbenchError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(entry.card.splits)}")
    if entry.card.kind == "real" and root is None:
        raise DataError(f"dataset {name!r} needs its data folder: pass root=PATH (CLI: --data-root PATH)")
    return entry.factory(split=split, root=Path(root) if root is not None else None, **overrides)
