"""What ``tokbench run`` measures when the user leaves things out: the default rules, as a
library function (in the way lm-evaluation-harness builds its config ``from_cli``).

- **The embedded default** (no ``--dataset``, no ``--backbone``): the six synthetic datasets
  that ship a zoo backbone, ``synth_tiny`` with the zoo weights, every registered method,
  P-Ratios 0.1, 0.3, 0.5, 0.7, 0.9, accuracy + FLOPs + throughput, the stochastic methods with seeds 0, 1, 2
  (not in the smoke slice).
- **Datasets without a backbone**: ``synth_tiny``, with the zoo weights when every dataset is
  a synthetic one with a shipped backbone.
- **A backbone without datasets**: cost only (FLOPs and throughput).
- **``--smoke``**: fills only what the user left unset: P 0.25 and 0.75, 16 clips per
  dataset (64 training clips for lp/ft), at most 2 timed repeats and 1 warm-up pass.
- **Evaluation batches**: 64 videos for the synthetic suite's tiny clips (less Python per
  clip), else 8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from tokbench.benchmark.runner import Sweep
from tokbench.benchmark.spec import DEFAULT_P, DEFAULT_SEEDS, parse_metrics, parse_p_ratios, parse_seeds
from tokbench.data.synthetic import SYNTHETIC
from tokbench.errors import TokbenchError
from tokbench.methods import METHODS, split_specs
from tokbench.zoo import zoo_datasets

__all__ = ["RunOptions", "Resolved", "sweep_from_options", "split_names", "checkpoint_argument"]


def split_names(text: str) -> tuple[str, ...]:
    """``"a, b,"`` -> ("a", "b")."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def checkpoint_argument(path: str | None) -> str | None:
    """A ``--checkpoint`` as the library takes it: a path that exists, ``zoo`` (each synthetic
    dataset's shipped backbone, resolved per dataset), or ``None``.

    Raises:
        TokbenchError: a path that does not exist.
    """
    from pathlib import Path

    if path is None or str(path) == "zoo":
        return None if path is None else "zoo"
    if not Path(path).exists():
        raise TokbenchError(f"checkpoint not found: {path}")
    return str(path)


@dataclass(frozen=True)
class RunOptions:
    """What the user typed (``None``: left out), before the default rules."""

    backbones: str | None = None
    methods: str | None = None
    p_ratio: str | None = None
    checkpoint: str | None = None
    datasets: str | None = None
    metrics: str | None = None
    limit: int | None = None
    train_limit: int | None = None
    eval_batch_size: int | None = None
    seeds: str | None = None
    name: str = "sweep"
    smoke: bool = False
    repeats: int = 10
    warmup: int = 3


@dataclass(frozen=True)
class Resolved:
    """The sweep, and the notes the user should see (e.g. a synthetic dataset without a zoo model)."""

    sweep: Sweep
    notes: tuple[str, ...] = ()
    suite: bool = False  # the embedded default


def sweep_from_options(options: RunOptions, **fields: Any) -> Resolved:
    """The :class:`Sweep` of ``tokbench run``: ``options`` after the default rules (module
    docstring), plus ``fields`` (Sweep fields the rules do not touch: device, dtype,
    protocol, data_root, ...) as given.

    Raises:
        TokbenchError: an empty --dataset, an empty zoo, or any malformed value.
    """
    notes: list[str] = []
    checkpoint, name, backbones = checkpoint_argument(options.checkpoint), options.name, options.backbones
    suite = options.datasets is None and backbones is None
    if suite:
        datasets = tuple(zoo_datasets())  # every synthetic dataset that ships a backbone (all six in a full install)
        missing = sorted(set(SYNTHETIC) - set(datasets))
        if missing:
            notes.append(f"no zoo backbone for {', '.join(missing)}; train one with 'tokbench train backbone'")
        if not datasets:
            raise TokbenchError("the zoo is empty: train backbones with 'tokbench train backbone --dataset NAME'")
        backbones, checkpoint = "synth_tiny", checkpoint or "zoo"
        name = name if name != "sweep" else "synthetic"
    elif options.datasets is not None:
        datasets = split_names(options.datasets)
        if not datasets:
            raise TokbenchError("empty --dataset: give dataset names, e.g. synth-motion (see 'tokbench ls datasets')")
        if backbones is None and checkpoint is None and set(datasets) <= set(zoo_datasets()):
            checkpoint = "zoo"  # synthetic datasets on the default backbone get their zoo weights, not a random init
        backbones = backbones or "synth_tiny"
    else:
        datasets = (None,)  # cost only
    names = split_names(backbones)
    p_ratio, limit, train_limit = options.p_ratio, options.limit, options.train_limit
    repeats, warmup = options.repeats, options.warmup
    if options.smoke:  # only fills what the user left unset ("" is set, and an error)
        p_ratio = "0.25,0.75" if p_ratio is None else p_ratio
        limit, train_limit = limit or 16, train_limit or 64
        repeats, warmup = min(repeats, 2), min(warmup, 1)
        name = "smoke" if name in ("sweep", "synthetic") else name
    eval_batch_size = options.eval_batch_size
    if eval_batch_size is None:
        synthetic_only = all(d in SYNTHETIC for d in datasets if d) and names == ("synth_tiny",)
        eval_batch_size = 64 if synthetic_only else 8
    metrics = options.metrics or ("accuracy,flops,throughput" if datasets != (None,) else "flops,throughput")
    # Three seeds of the stochastic methods for the default run's claims; the smoke slice is a
    # regression check, where one seed per cell is enough.
    seeds = parse_seeds(options.seeds) if options.seeds is not None else (
        DEFAULT_SEEDS if suite and not options.smoke else None)
    methods = tuple(split_specs(options.methods)) if options.methods is not None else tuple(METHODS.names())
    sweep = Sweep(
        backbones=names, methods=methods, p_ratios=tuple(parse_p_ratios(DEFAULT_P if p_ratio is None else p_ratio)),
        metrics=parse_metrics(metrics), checkpoint=checkpoint, name=name, datasets=datasets, limit=limit,
        train_limit=train_limit, eval_batch_size=eval_batch_size, repeats=repeats, warmup=warmup, method_seeds=seeds,
    )
    return Resolved(replace(sweep, **fields), tuple(notes), suite)
