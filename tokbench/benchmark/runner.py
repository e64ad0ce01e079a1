"""The sweep runner: plan the cells, measure each, append one record per cell.

``plan`` validates everything a user typed (backbones, method specs at every P, the
device, the checkpoint) before anything is measured or written, so bad input never
touches the store. ``run_sweep`` then measures the cells not already in the store,
flushing each record as it completes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from tokbench.backbones import BACKBONES, VideoViT, VideoViTConfig, create_backbone, resolve_config
from tokbench.benchmark.distributed import World, world_from_env
from tokbench.benchmark.environment import collect_environment, device_name, resolve_device
from tokbench.benchmark.evaluate import evaluate, from_store, head_size, score, stored_labels
from tokbench.benchmark.flops import cached_flops
from tokbench.benchmark.groups import MAX_CELLS, GroupMember, run_group_pass, split_groups, stored_indices
from tokbench.benchmark.spec import METRICS as METRIC_NAMES
from tokbench.benchmark.spec import cell_key
from tokbench.benchmark.timing import measure_throughput, resolve_dtype
from tokbench.benchmark.training_protocols import adapt, training_settings
from tokbench.claims import CellClaims
from tokbench.data import DATASETS, create_dataset
from tokbench.data.real import check_readable
from tokbench.data.synthetic import DEFAULT_CLIPS
from tokbench.errors import TokbenchError, TokbenchWarning, UnreachableError
from tokbench.methods import METHODS, Method, build_method, method_id, parse_method_spec
from tokbench.plugins import method_origin
from tokbench.predictions import PredictionWriter, read_predictions
from tokbench.store import SCHEMA_VERSION, THROUGHPUT_FIELDS, RunWriter, pending_metrics, stored_cells, utc_now
from tokbench.zoo import zoo_checkpoint

__all__ = ["Sweep", "Cell", "plan", "run_sweep", "SweepResult"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sweep:
    """What to measure: the cross product datasets x backbones x methods x p_ratios.

    ``datasets`` holds ``None`` for a cost-only sweep (FLOPs and throughput, no data).
    With datasets, each clip is made in the backbone's geometry (frames, size) and the
    backbone's head is sized for the dataset.
    """

    backbones: tuple[str, ...]
    methods: tuple[str, ...]  # spec strings, e.g. "random(seed=1)"
    p_ratios: tuple[float, ...]
    metrics: tuple[str, ...] = ("flops", "throughput")
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = 1
    warmup: int = 3
    repeats: int = 10
    seed: int = 0
    checkpoint: str | None = None  # a path, or "zoo": each synthetic dataset's shipped backbone
    num_classes: int | None = None
    name: str = "sweep"
    datasets: tuple[str | None, ...] = (None,)
    data_root: str | None = None  # the folder of a real dataset
    split: str | None = None  # default: each dataset's evaluation split
    limit: int | None = None  # evaluate only the first N videos (smoke runs)
    eval_batch_size: int = 8
    num_workers: int | None = None  # DataLoader workers; None: by dataset (see _Shared.workers)
    protocol: str = "eval"  # eval | lp (linear probe on reduced tokens) | ft (fine-tune with reduction)
    train_limit: int | None = None  # training clips for lp/ft (default: the whole train split)
    # Content-dependent methods (RLT): clips to calibrate on (train split), clips to count
    # FLOPs on (evaluation split), and, in a cost-only sweep, the dataset that supplies them.
    compile: bool = False  # time a torch.compile'd model (the throughput metric only)
    calibration_clips: int = 64
    flop_clips: int = 16
    content_dataset: str = "synth-motion"
    command: str | None = None  # the command line that made the sweep (recorded, not part of any id)
    group_cells: int = MAX_CELLS  # accuracy cells per pass over the data (1: each cell its own pass)
    # The evaluation protocol of real datasets (tokbench.data.protocols): None keeps each
    # dataset's default protocol and that protocol's views, stride and aggregation.
    # Seeds of the stochastic methods (those with a ``seed`` option): each such method spec
    # that does not set its seed runs once per seed here (random(seed=0), random(seed=1), ...).
    method_seeds: tuple[int, ...] | None = None
    eval_protocol: str | None = None
    eval_views: tuple[int, int] | None = None  # (temporal clips, spatial crops)
    eval_stride: int | None = None
    eval_aggregation: str | None = None


@dataclass(frozen=True)
class Cell:
    """One point of a sweep, fully resolved."""

    dataset: str | None
    split: str | None
    checkpoint: str | None
    backbone: str
    config: VideoViTConfig
    weights: str
    method_spec: str
    method_name: str
    method_id: str
    method_params: dict[str, Any]
    p_ratio: float
    key: str  # the cell id: what decides cost and accuracy, nothing about the machine
    speed_key: str | None = None  # with throughput: the cell id + the device and timing settings


class DuplicateCellWarning(TokbenchWarning):
    """Two method specs of one sweep that are the same method (equal canonical specs)."""



@dataclass
class SweepResult:
    records: list[dict[str, Any]] = field(default_factory=list)  # written by this call
    skipped: int = 0  # cells already in the store
    path: Path | None = None  # the file written, if any
    claimed: int = 0  # cells skipped because another running sweep was measuring them


def weights_id(checkpoint: str | None) -> str:
    """``random-init``, or the checkpoint's name and the sha256 prefix of its weights."""
    if checkpoint is None:
        return "random-init"
    path = Path(checkpoint)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".pth", ".pt") and p.is_file())
        path = files[0] if files else path / "config.json"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return f"{Path(checkpoint).name}@{digest.hexdigest()[:12]}"


def _check_positive(sweep: Sweep) -> None:
    for name in ("batch_size", "repeats"):
        if getattr(sweep, name) < 1:
            raise TokbenchError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(sweep, name)}")
    if sweep.warmup < 0:
        raise TokbenchError(f"--warmup must be >= 0, got {sweep.warmup}")
    # torch generators take 64-bit seeds (a larger one overflowed mid-measurement); 63 bits,
    # as for random(seed=...), so that no two seeds fold onto one stream.
    if isinstance(sweep.seed, bool) or not isinstance(sweep.seed, int) or not 0 <= sweep.seed < 2**63:
        raise TokbenchError(f"--seed must be a non-negative integer below 2**63, got {sweep.seed!r}")
    if not sweep.backbones or not sweep.methods or not sweep.p_ratios or not sweep.metrics:
        raise TokbenchError("nothing to run: give at least one backbone, method, P-Ratio and metric")


def plan(sweep: Sweep) -> list[Cell]:
    """Resolve and validate every cell of ``sweep``.

    Methods that ignore P-Ratio (``none``) get one cell at P = 1; equal canonical method
    specs (``random`` and ``random(seed=0)``) are one cell, with a :class:`DuplicateCellWarning`.

    A cell's id (``Cell.key``) hashes what decides its cost and accuracy: the geometry, the
    weights' content, the method and its options (files by content), P, the data (dataset,
    split, views, clip count, limit), the protocol, the seed and the evaluation dtype — not
    the machine, paths, host, threads, library versions or which metrics are asked for (those
    are in each record's ``env``). Throughput also depends on the device and the timing
    settings: ``Cell.speed_key`` adds them, and a stored speed counts only for the same one.

    Raises:
        TokbenchError: any bad input (unknown names with suggestions, bad options, a
            missing or mismatching checkpoint, CUDA asked for without CUDA).
    """
    _check_positive(sweep)
    device = resolve_device(sweep.device)
    dtype = resolve_dtype(sweep.dtype, device)  # decides accuracy (fp32 on CPU, bf16 autocast on CUDA by default)
    if "accuracy" in sweep.metrics and None in sweep.datasets:
        raise TokbenchError("the accuracy metric needs a dataset: pass --dataset NAME (see 'tokbench ls datasets')")
    training = training_settings(sweep.protocol)  # an unknown protocol raises
    if sweep.protocol != "eval" and "accuracy" not in sweep.metrics:
        raise TokbenchError(f"--protocol {sweep.protocol} trains for accuracy: add accuracy to --metrics and a --dataset")
    protocol_keys = {"protocol": sweep.protocol, "training": training, "train_limit": sweep.train_limit}
    # What decides a cell's speed but none of its other numbers: the device's name (the CPU
    # model or the GPU) and how it is timed. Only the speed id holds them.
    speed_keys = (
        {"device_type": device.type, "device_name": device_name(device), "batch_size": sweep.batch_size,
         "warmup": sweep.warmup, "repeats": sweep.repeats, "compile": sweep.compile}
        if "throughput" in sweep.metrics else None
    )
    cells: list[Cell] = []
    seen: dict[str, str] = {}  # cell id -> the first spec that made it
    duplicates: dict[tuple[str, str], None] = {}  # (first spec, equal spec), in order
    for backbone in sweep.backbones:
        BACKBONES.get(backbone)  # unknown name -> suggestions
        for dataset_name in sweep.datasets:
            checkpoint = _checkpoint_for(sweep.checkpoint, dataset_name)
            base = resolve_config(backbone, checkpoint=checkpoint, num_classes=sweep.num_classes)
            weights = weights_id(checkpoint)
            config, data_keys = base, {"dataset": None}
            if dataset_name is not None:
                dataset = open_dataset(sweep, dataset_name, base)
                heads = head_size(dataset)
                if sweep.num_classes is not None and sweep.num_classes != heads:
                    raise TokbenchError(f"--num-classes {sweep.num_classes} does not fit {dataset_name}, which needs "
                                        f"{heads} outputs; leave it out to size the head from the dataset")
                config = resolve_config(backbone, checkpoint=checkpoint, num_classes=heads)
                data_keys = {"dataset": dataset_name, "split": dataset.split, "views": dataset.views,
                             "clips": len(dataset), "limit": sweep.limit}
                protocol = getattr(dataset, "protocol", None)
                if protocol is not None:  # real datasets only: synthetic cell ids stay as they were
                    data_keys["eval_protocol"] = protocol.params()
            if checkpoint is not None:
                # Load once now so a checkpoint that does not fit fails before anything runs.
                create_backbone(backbone, checkpoint=checkpoint, num_classes=config.num_classes)
            for spec in _seeded(sweep.methods, sweep.method_seeds):
                name, _ = parse_method_spec(spec)
                cls = METHODS.get(name)
                reference = build_method(spec, p_ratio=1.0)  # validates the options once
                reference.validate(config)  # and against this backbone (a block past its depth), before anything runs
                ratios = sweep.p_ratios if cls.uses_p_ratio else (1.0,)
                content = {}
                if cls.cost_depends_on_content or cls.needs_calibration:
                    content = {"calibration_clips": sweep.calibration_clips, "flop_clips": sweep.flop_clips,
                               "content_dataset": sweep.content_dataset if dataset_name is None else None}
                for p in ratios:
                    _check_buildable(spec, p)
                    key = cell_key({
                        **content,
                        "schema": SCHEMA_VERSION, "config": config.to_dict(), "weights": _content_id(weights),
                        "method": reference.name, "p_ratio": p,
                        "params": _identity_params(reference.params(), cls.identity_defaults),
                        "seed": sweep.seed, "dtype": dtype, **protocol_keys, **data_keys,
                    })
                    if key in seen:  # 'random' and 'random(seed=0)': one cell, measured once
                        duplicates.setdefault((seen[key], spec), None)
                        continue
                    seen[key] = spec
                    cells.append(Cell(
                        dataset=dataset_name, split=data_keys.get("split"), checkpoint=checkpoint,
                        backbone=backbone, config=config,
                        weights=weights, method_spec=spec, method_name=reference.name,
                        method_id=method_id(reference), method_params=reference.params(), p_ratio=p,
                        key=key, speed_key=None if speed_keys is None else cell_key({"cell": key, **speed_keys}),
                    ))
    for first, again in duplicates:
        warnings.warn(f"--methods: {again!r} is the same method as {first!r}; its cells are measured once",
                      DuplicateCellWarning, stacklevel=2)
    return cells


def _seeded(specs: tuple[str, ...], seeds: tuple[int, ...] | None) -> list[str]:
    """Each spec of a method with a ``seed`` option that does not set it, once per seed."""
    if not seeds:
        return list(specs)
    out = []
    for spec in specs:
        name, kwargs = parse_method_spec(spec)
        if "seed" in kwargs or "seed" not in METHODS.get(name).param_names():
            out.append(spec)
            continue
        options = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        out += [f"{name}({options}{', ' if options else ''}seed={seed})" for seed in seeds]
    return out


def _content_id(weights: str) -> str:
    """The content part of a :func:`weights_id` (``random-init`` or the sha256 prefix): a
    checkpoint copied to another folder or renamed is the same cell."""
    return weights.rsplit("@", 1)[-1]


def _identity_params(params: dict[str, Any], later: dict[str, Any] | None = None) -> dict[str, Any]:
    """Method options as they enter the cell id: an option naming a file (a LITE selector,
    a LookWhen extractor) by the file's content, not its path on this machine; an option
    added later (``Method.identity_defaults``) only when it differs from its default."""
    out = {}
    for name, value in params.items():
        if later and name in later and later[name] == value:
            continue
        if isinstance(value, str) and value not in ("", "zoo") and Path(value).is_file():
            value = _content_id(weights_id(value))
        out[name] = value
    return out


def _checkpoint_for(checkpoint: str | None, dataset: str | None) -> str | None:
    """``zoo`` -> the shipped backbone of ``dataset``; anything else as given."""
    if checkpoint != "zoo":
        return checkpoint
    if dataset is None:
        raise TokbenchError("--checkpoint zoo needs --dataset: the zoo has one backbone per synthetic dataset")
    return str(zoo_checkpoint(dataset))


def open_dataset(sweep: Sweep, name: str, config: VideoViTConfig, *, train: bool = False):
    """The evaluation split of dataset ``name`` (or, with ``train``, its training split for
    lp/ft, one view per video) with clips in the backbone's geometry.

    Raises:
        DataError: a missing folder or annotation file, or no readable video.
    """
    card = DATASETS.get(name).card
    overrides: dict[str, Any] = {"frames": config.num_frames, "size": config.img_size}
    limit = sweep.train_limit if train else sweep.limit
    split = "train" if train else sweep.split or card.eval_split
    if limit is not None and card.kind == "synthetic":
        # Clip i of a synthetic split does not depend on its size, so num_clips=600 on the
        # 500-clip split would invent 100 clips that are not in it: a limit keeps at most the
        # split, as it does for real datasets (the record's clips says how many ran).
        overrides["num_clips"] = min(limit, DEFAULT_CLIPS.get(split, limit))
    elif limit is not None:
        overrides["limit"] = limit
    if train and card.kind == "real":
        overrides.update(temporal_clips=1, spatial_crops=1)
    elif card.kind == "real":
        overrides.update(_eval_options(sweep))
    elif _eval_options(sweep):
        raise TokbenchError(f"{name} is synthetic and keeps its own protocol (one generated clip, logits): the "
                            "--eval-protocol/--eval-views/--eval-stride/--eval-aggregation options apply to real datasets")
    dataset = create_dataset(name, split=split, root=sweep.data_root, **overrides)
    if card.kind == "real" and not train:
        check_readable(dataset)
    return dataset


def _eval_options(sweep: Sweep) -> dict[str, Any]:
    """The dataset options the sweep's --eval-* settings give a real dataset's eval split."""
    options: dict[str, Any] = {}
    if sweep.eval_protocol is not None:
        options["protocol"] = sweep.eval_protocol
    if sweep.eval_views is not None:
        options["temporal_clips"], options["spatial_crops"] = sweep.eval_views
    if sweep.eval_stride is not None:
        options["stride"] = sweep.eval_stride
    if sweep.eval_aggregation is not None:
        options["aggregation"] = sweep.eval_aggregation
    return options


def _check_buildable(spec: str, p_ratio: float) -> None:
    """Bad options at this P are input errors; a P the method cannot reach is not: that
    cell is measured as ``unreachable`` and recorded."""
    with contextlib.suppress(UnreachableError):
        build_method(spec, p_ratio=p_ratio)


def _base_record(cell: Cell, sweep: Sweep, run_id: str, env: dict) -> dict[str, Any]:
    c = cell.config
    cls = METHODS.get(cell.method_name)
    return {
        "schema_version": SCHEMA_VERSION, "run_id": run_id, "cell_id": cell.key,
        "created_utc": utc_now(), "status": "ok", "error": None,
        "backbone": cell.backbone, "weights": cell.weights, "num_classes": c.num_classes,
        "frames": c.num_frames, "img_size": c.img_size, "tubelet": c.tubelet_size,
        "patch": c.patch_size, "num_patches": c.num_patches, "embed_dim": c.embed_dim,
        "depth": c.depth, "dataset": cell.dataset, "split": cell.split, "protocol": sweep.protocol, "seed": sweep.seed,
        "method": cell.method_name, "method_id": cell.method_id, "method_origin": method_origin(cls),
        "method_params": cell.method_params, "privileged": cls.privileged, "embeds": cls.embeds,
        "p_ratio": cell.p_ratio, "metrics": list(sweep.metrics), "command": sweep.command,
        "env": env,
    }


class _Shared:
    """What one run_sweep call builds once and reuses across cells: the model of the
    current backbone config, the opened dataset, and timings (throughput does not depend
    on the dataset, only on geometry, method and P)."""

    def __init__(self, sweep: Sweep, device: torch.device) -> None:
        self.sweep, self.device = sweep, device
        self.models: dict[tuple[VideoViTConfig, str | None], VideoViT] = {}
        self.datasets: dict[tuple[str, VideoViTConfig], Any] = {}
        self.timings: dict[tuple, Any] = {}
        self.best_calibration: float | None = None  # fastest calibration kernel seen: the machine when quiet
        self.memos: dict[tuple, dict] = {}

    def retain(self, cells: list[Cell]) -> None:
        """Keep in memory only the models these cells (a group, or one cell) run on."""
        keep = {(c.config, c.checkpoint) for c in cells}
        for key in [k for k in self.models if k not in keep]:
            del self.models[key]

    def model(self, cell: Cell) -> VideoViT:
        key = (cell.config, cell.checkpoint)
        if key not in self.models:
            self.models[key] = create_backbone(
                cell.backbone, checkpoint=cell.checkpoint, num_classes=cell.config.num_classes
            ).to(self.device)
        return self.models[key]

    def workers(self, dataset) -> int:
        """DataLoader workers for ``dataset``: the sweep's ``num_workers``, or by default none
        for the synthetic suite (its clips are in memory) and, for a real dataset, one per
        CPU this process may use but one, at most 8 (decoding is what a real evaluation
        waits on)."""
        if self.sweep.num_workers is not None:
            return self.sweep.num_workers
        if dataset.card.kind != "real":
            return 0
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        return max(1, min(8, cpus - 1))

    def memo(self, cell: Cell) -> dict:
        """Per-clip method results that do not depend on P, for one (dataset, model)."""
        key = (cell.dataset, cell.config, cell.checkpoint)
        if key not in self.memos:
            self.memos.clear()  # one (dataset, model) at a time, like the models
            self.memos[key] = {}
        return self.memos[key]

    def dataset(self, cell: Cell, *, train: bool = False):
        """The evaluation split (or, for lp/ft, the training split) in the cell's geometry."""
        key = (cell.dataset, cell.config, train)
        if key not in self.datasets:
            self.datasets[key] = open_dataset(self.sweep, cell.dataset, cell.config, train=train)
        return self.datasets[key]


def _sample_videos(dataset, n: int) -> Tensor:
    """The first ``n`` readable clips of ``dataset``, first view: (n, C, T, H, W)."""
    videos = []
    for i in range(len(dataset)):
        video = dataset[i].get("video")
        if video is None:
            continue
        videos.append(video[0] if video.dim() == 5 else video)
        if len(videos) == n:
            break
    if not videos:
        raise TokbenchError(f"no readable clip in {dataset!r}")
    return torch.stack(videos)


def _content_clips(cell: Cell, sweep: Sweep, shared: _Shared, *, train: bool, n: int) -> Tensor:
    """Clips for a content-dependent method: the cell's dataset, or in a cost-only sweep
    ``sweep.content_dataset`` rendered in the backbone's geometry."""
    key = ("clips", cell.dataset, cell.config.num_frames, cell.config.img_size, train, n)
    if key not in shared.datasets:
        if cell.dataset is not None and train and DATASETS.get(cell.dataset).card.kind == "synthetic":
            # Clip i of a synthetic split does not depend on the split's size: generate only
            # the first n (RLT's calibration needs 64 of 2000; generating all took ~10 s).
            n = min(n, sweep.train_limit or n)
            dataset = create_dataset(cell.dataset, split="train", num_clips=n, frames=cell.config.num_frames,
                                     size=cell.config.img_size)
        elif cell.dataset is not None:
            dataset = shared.dataset(cell, train=train)
        else:
            dataset = create_dataset(sweep.content_dataset, split="train" if train else "val", num_clips=n,
                                     frames=cell.config.num_frames, size=cell.config.img_size)
        shared.datasets[key] = _sample_videos(dataset, n)
    return shared.datasets[key]


def _prepared_method(cell: Cell, sweep: Sweep, shared: _Shared) -> Method:
    """The cell's method, set up on its model and, if it needs it, calibrated on training
    clips. One instance serves FLOPs, accuracy and throughput, so all three measure the same
    calibrated method."""
    method = build_method(cell.method_spec, p_ratio=cell.p_ratio)
    method.bind(dataset=cell.dataset, memo=shared.memo(cell))
    method.setup(shared.model(cell))
    if method.needs_calibration:
        method.calibrate(_content_clips(cell, sweep, shared, train=True, n=sweep.calibration_clips).to(shared.device))
    return method


def _prepared_everywhere(cell: Cell, sweep: Sweep, shared: _Shared, world: World) -> Method:
    """:func:`_prepared_method` on every rank; if any rank fails, every rank raises (an
    unreachable P stays ``UnreachableError``), so all ranks skip the cell's collectives alike."""
    if not world.distributed:
        return _prepared_method(cell, sweep, shared)
    method = error = None
    try:
        method = _prepared_method(cell, sweep, shared)
    except Exception as e:  # noqa: BLE001 - shared with the other ranks below
        error = e
    world.gather_or_raise(None, error)
    return method


def attention_kernels(method: Method, config: VideoViTConfig) -> dict[str, Any]:
    """The attention kernel each block of ``method`` runs (``attn_impl_blocks``): explicit
    where the method asks for attention probabilities (a cue method's decision block,
    vid-TLDR's scoring block), the backbone's kernel elsewhere; ``attn_impl`` is that kernel
    when all blocks agree, else ``mixed``."""
    blocks = ["explicit" if method.attention_needs(layer) == "probs" else config.attn_impl for layer in range(config.depth)]
    return {"attn_impl": blocks[0] if len(set(blocks)) == 1 else "mixed", "attn_impl_blocks": blocks}


def _flops_fields(cell: Cell, sweep: Sweep, shared: _Shared, method: Method) -> dict[str, Any]:
    """FLOPs, parameters and tokens of one cell (fvcore; counting sets up its own copy of the
    method on its own backbone: the meta device, or the CPU per clip for content-dependent costs)."""
    content = method.cost_depends_on_content
    videos = _content_clips(cell, sweep, shared, train=False, n=sweep.flop_clips) if content else None
    flops = cached_flops(cell.config, method, videos=videos)
    return dict(gflops=flops.gflops, gflops_std=flops.gflops_std, flop_counter=flops.counter,
                params_m=flops.params / 1e6, tokens_per_block=flops.tokens_per_block,
                tokens_kept=flops.tokens_per_block[0] - cell.config.n_prefix, flops_by_operator=flops.by_operator)


def _speed_fields(cell: Cell, sweep: Sweep, shared: _Shared, method: Method) -> dict[str, Any]:
    """Throughput of one cell, timed once per geometry/method/P, except where the cost
    depends on the clips (then per dataset, on the dataset's clips: random noise would make
    RLT keep everything). Privileged methods are not timed."""
    if method.privileged:
        return {"throughput_skipped": "privileged: the method needs the true labels, which a deployed model has not",
                "speed_id": cell.speed_key}
    device, content = shared.device, method.cost_depends_on_content
    geometry = {k: v for k, v in cell.config.to_dict().items() if k != "num_classes"}
    key = (json.dumps(geometry, sort_keys=True), cell.method_name,
           json.dumps(cell.method_params, sort_keys=True, default=str), cell.p_ratio,
           cell.dataset if content else None)
    if key not in shared.timings:
        videos = None
        if content:
            videos = _content_clips(cell, sweep, shared, train=False, n=max(sweep.batch_size, sweep.flop_clips))
            videos = videos[: sweep.batch_size]
        timed = method.model(shared.model(cell))
        warmup = sweep.warmup
        if sweep.compile:
            # Compiled per cell (the method's hooks are part of the graph); compilation
            # happens in the untimed warm-up passes, at least two (compile, then steady).
            torch._dynamo.reset()
            timed, warmup = torch.compile(timed), max(warmup, 2)
        shared.timings[key] = timing = measure_throughput(
            timed, method, batch_size=sweep.batch_size, device=device, dtype=sweep.dtype,
            warmup=warmup, repeats=sweep.repeats, seed=sweep.seed, video=videos,
            best_calibration=shared.best_calibration,
        )
        shared.best_calibration = max(shared.best_calibration or 0.0, *timing.calibration_gflops)
    timing = shared.timings[key]
    return dict(
        clips_per_s=timing.clips_per_s, ms_per_clip=timing.ms_per_clip,
        median_ms=timing.median_ms, iqr_ms=timing.iqr_ms, latency_ms=timing.samples_ms,
        batch_size=timing.batch_size, warmup=timing.warmup, repeats=timing.repeats,
        dtype=timing.dtype, device=str(device), peak_mem_mb=timing.peak_mem_mb,
        speed_id=cell.speed_key, speed_device=device_name(device), compiled=sweep.compile,
        speed_spread=timing.spread, clips_per_s_lo=timing.clips_per_s_lo, clips_per_s_hi=timing.clips_per_s_hi,
        calibration_gflops=list(timing.calibration_gflops), load_per_cpu=timing.load_per_cpu,
        speed_flags=timing.flags,
    )


def _accuracy_fields(cell: Cell, dataset, acc) -> dict[str, Any]:
    """The record's accuracy fields from a scored evaluation (:func:`~tokbench.benchmark.evaluate.score`)."""
    out: dict[str, Any] = dict(acc.metrics)
    for name, (lo, hi) in acc.intervals.items():
        out.update({f"{name}_lo": lo, f"{name}_hi": hi})
    out.update(clips=acc.clips, views=acc.views, view_averaging=acc.aggregation, skipped_videos=acc.skipped_videos,
               bootstrap=acc.bootstrap,
               predictions={"folder": str(Path("predictions") / cell.key), "rows": acc.clips, "dtype": "float32"})
    protocol = getattr(dataset, "protocol", None)
    if protocol is not None:  # a real dataset: the protocol's name and every parameter
        out.update(eval_protocol=protocol.name, eval_protocol_params=protocol.params())
    else:
        out["eval_protocol"] = "synthetic"
    return out


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or the CPU allocator's failure (a
    RuntimeError "DefaultCPUAllocator: can't allocate memory"): recorded as ``oom``."""
    if isinstance(error, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text.lower())


class Progress:
    """What :func:`run_sweep` tells a progress display; every method is a no-op here
    (``tokbench run`` shows a bar on a terminal and plain lines in a log)."""

    def start(self, cells: int) -> None:
        """``cells`` cells have something to measure."""

    def group(self, label: str, cells: int, clips: int) -> None:
        """A pass over ``clips`` clips for ``cells`` cells begins (``clips`` 0: no data pass)."""

    def clips(self, n: int) -> None:
        """``n`` more clips of the current pass were decoded and run."""

    def cell_done(self, cell: Cell, record: dict[str, Any]) -> None:
        """A cell's record was written."""


@dataclass
class _Entry:
    """A cell being measured in this run: what it measures, its record so far, its method."""

    cell: Cell
    measure: tuple[str, ...]
    record: dict[str, Any]
    started: float
    method: Method | None = None
    done: bool = False


class _Run:
    """One run_sweep call: the sweep, the store and the machine, and how a unit of cells (a
    group evaluated in one pass over the data, or one cell) is measured."""

    def __init__(self, sweep: Sweep, results_dir: str | Path, *, retry_failed: bool, world: World, device: torch.device,
                 writer: RunWriter | None, claims: CellClaims | None, run_id: str, env: dict, progress: Progress,
                 result: SweepResult) -> None:
        self.sweep, self.results_dir, self.retry_failed, self.world = sweep, Path(results_dir), retry_failed, world
        self.writer, self.claims, self.run_id, self.env, self.progress, self.result = \
            writer, claims, run_id, env, progress, result
        self.shared = _Shared(sweep, device)

    # -- a unit ---------------------------------------------------------------------------
    def unit(self, cells: list[Cell]) -> None:
        """Claim the cells, prepare their methods, evaluate the accuracy cells in one pass,
        then count and time each, writing each record as soon as it is complete."""
        entries = self._claimed(cells)
        if not entries:
            return
        self.shared.retain([e.cell for e in entries])
        for entry in entries:
            self._guard(entry, lambda e=entry: setattr(e, "method", _prepared_everywhere(e.cell, self.sweep, self.shared,
                                                                                            self.world)))
            if entry.method is not None:
                entry.record.update(attention_kernels(entry.method, entry.cell.config))
        accuracy = [e for e in entries if not e.done and "accuracy" in e.measure]
        if accuracy and self.sweep.protocol == "eval":
            self._group_pass(accuracy)
        else:
            for entry in accuracy:
                self._guard(entry, lambda e=entry: self._adapted_accuracy(e))
        for entry in entries:
            if entry.done:
                continue
            if self.world.is_main:
                if "flops" in entry.measure:
                    self._guard(entry, lambda e=entry: e.record.update(
                        _flops_fields(e.cell, self.sweep, self.shared, e.method)), collective=False)
                if not entry.done and "throughput" in entry.measure:
                    self._guard(entry, lambda e=entry: e.record.update(
                        _speed_fields(e.cell, self.sweep, self.shared, e.method)), collective=False)
            if not entry.done:
                entry.record["method_state"] = entry.method.describe()
                if entry.method.cost_depends_on_content and entry.cell.dataset is None:
                    entry.record["content_dataset"] = self.sweep.content_dataset
                self._finish(entry)

    def _claimed(self, cells: list[Cell]) -> list[_Entry]:
        """Rank 0 claims each cell and decides, from what is stored now, what to measure; every
        rank gets the same decisions."""
        local: list[tuple[str, tuple[str, ...], dict | None]] = []
        if self.claims is not None:
            for cell in cells:
                stored_now = self.claims.acquire(cell.key)
                if stored_now is None:
                    continue
                measure, base = pending_metrics(stored_now, self.sweep.metrics, cell.speed_key,
                                                retry_failed=self.retry_failed)
                if not measure:  # finished by another sweep since this one planned
                    self.claims.release(cell.key)
                    continue
                local.append((cell.key, tuple(measure), base))
        decisions = self.world.broadcast([(k, m) for k, m, _ in local] if self.world.is_main else None)
        bases = {k: b for k, _, b in local}
        by_key = {c.key: c for c in cells}
        entries = []
        for key, measure in decisions:
            cell = by_key[key]
            record = _base_record(cell, self.sweep, self.run_id, self.env)
            base = bases.get(key)
            if base is not None:
                record.update(_carried_over(base, record, measure))
            if self.world.distributed:
                record["distributed"] = self.world.describe()
            entries.append(_Entry(cell, measure, record, time.perf_counter()))
        return entries

    def _guard(self, entry: _Entry, step: Callable[[], Any], *, collective: bool = True) -> None:
        """Run one step of a cell; a failure becomes the cell's record (``unreachable``,
        ``oom`` or ``error``) and the cell is done. ``collective`` steps raise alike on every
        rank (method preparation), the others run on rank 0 only."""
        try:
            step()
        except UnreachableError as e:
            entry.record.update(status="unreachable", error=str(e))
            self._finish(entry)
        except (Exception, SystemExit) as e:  # a failed cell is recorded; it never stops the sweep
            self._fail(entry, e)

    def _fail(self, entry: _Entry, error: BaseException) -> None:
        if is_out_of_memory(error):
            first_line = str(error).splitlines()[0] if str(error) else ""
            entry.record.update(status="oom", error=f"{type(error).__name__}: {first_line}")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        else:
            entry.record.update(status="error", error=f"{type(error).__name__}: {error}")
        log.debug("cell %s failed: %r", entry.cell.key, error)
        self._finish(entry)

    def _finish(self, entry: _Entry) -> None:
        """Write the cell's record (rank 0), then let its claim go."""
        entry.done = True
        entry.record["cell_seconds"] = round(time.perf_counter() - entry.started, 3)
        if self.writer is not None:
            self.writer.append(entry.record)  # on disk before the claim goes
            self.claims.release(entry.cell.key)
            self.result.records.append(entry.record)
            self.result.path = self.writer.path
            self.progress.cell_done(entry.cell, entry.record)

    # -- accuracy ---------------------------------------------------------------------------
    def _writer(self, cell: Cell) -> PredictionWriter:
        rank = f"-rank{self.world.rank}" if self.world.distributed else ""
        return PredictionWriter(self.results_dir, cell.key, f"{self.run_id}{rank}")

    def _group_pass(self, entries: list[_Entry]) -> None:
        """The cells' accuracy from one pass over the clips they still lack (:mod:`groups`)."""
        dataset = self.shared.dataset(entries[0].cell)
        positions = range(len(dataset))
        needs = None
        if self.world.is_main:  # what earlier, killed passes stored
            needs = {e.cell.key: sorted(set(positions) - stored_indices(self.results_dir, e.cell.key)) for e in entries}
        needs = self.world.broadcast(needs)
        members = [GroupMember(e.cell.key, e.method, e.method.model(self.shared.model(e.cell)), self._writer(e.cell),
                               set(needs[e.cell.key])) for e in entries]
        clips = len(set().union(*(m.need for m in members)))
        if self.world.is_main:
            self.progress.group(f"{entries[0].cell.dataset}: {len(entries)} cells", len(entries), clips)
        sweep, device = self.sweep, self.shared.device
        try:
            stats = run_group_pass(members, dataset, batch_size=sweep.eval_batch_size, device=device,
                                   dtype=resolve_dtype(sweep.dtype, device), num_workers=self.shared.workers(dataset),
                                   world=self.world, on_clips=self.progress.clips if self.world.is_main else None,
                                   is_out_of_memory=is_out_of_memory)
        finally:
            for member in members:
                member.writer.close()
        reports = self.world.all_gather({"skipped": stats.skipped, "decode": stats.decode_seconds,
                                         "errors": {m.key: m.error for m in members if m.error is not None}})
        skipped = sorted({s for r in reports for s in r["skipped"]})
        decode = max(r["decode"] for r in reports)
        for entry, member in zip(entries, members):
            error = next((r["errors"][member.key] for r in reports if member.key in r["errors"]), None)
            if error is not None:
                self._fail(entry, error if self.world.is_main else RuntimeError(str(error)))
                continue
            entry.record["group"] = {"cells": len(entries), "clips_decoded": clips, "decode_s": round(decode, 3),
                                     "model_s": round(member.model_seconds, 3)}
            if self.world.is_main:
                self._guard(entry, lambda e=entry: e.record.update(self._scored(e.cell, dataset, skipped)),
                            collective=False)

    def _scored(self, cell: Cell, dataset, skipped: list[str]) -> dict[str, Any]:
        """A cell's accuracy fields from all it has stored (this pass and earlier ones)."""
        stored = read_predictions(self.results_dir, cell.key)
        acc = score(from_store(stored, dataset, skipped=skipped), dataset)
        return _accuracy_fields(cell, dataset, acc)

    def _adapted_accuracy(self, entry: _Entry) -> None:
        """``lp``/``ft``: train on the cell's reduced tokens, then evaluate (its own pass)."""
        cell, sweep, shared, device = entry.cell, self.sweep, self.shared, self.shared.device
        torch.manual_seed(sweep.seed)
        model = adapt(sweep.protocol, entry.method.model(shared.model(cell)), entry.method, shared.dataset(cell, train=True),
                      device=device)
        dataset = shared.dataset(cell)
        with self._writer(cell) as predictions:
            acc = evaluate(model, entry.method, dataset, batch_size=sweep.eval_batch_size, device=device,
                           dtype=resolve_dtype(sweep.dtype, device), num_workers=shared.workers(dataset),
                           world=self.world, on_batch=lambda part: predictions.append(
                               part.index.tolist(), part.ids, stored_labels(part, dataset.card.task), part.logits.numpy()))
        entry.record.update(_accuracy_fields(cell, dataset, acc))


def units(cells: list[Cell], sweep: Sweep, pending: dict[str, tuple[str, ...]]) -> list[list[Cell]]:
    """The order cells are measured in: the accuracy cells under ``eval`` in groups that see
    the same clips (:func:`~tokbench.benchmark.groups.split_groups`, each group where its
    first cell is in the plan), every other cell alone."""
    grouped = [c for c in cells if "accuracy" in pending.get(c.key, ()) and sweep.protocol == "eval"]
    groups = split_groups(grouped, lambda c: METHODS.get(c.method_name), max_cells=sweep.group_cells)
    first = {id(g[0]): g for g in groups}
    in_group = {c.key for c in grouped}
    out = []
    for cell in cells:
        if cell.key not in in_group:
            out.append([cell])
        elif id(cell) in first:
            out.append(first[id(cell)])
    return out


def run_sweep(
    sweep: Sweep, *, results_dir: str | Path = "results", retry_failed: bool = False,
    progress: Progress | None = None, only: frozenset[str] | None = None, cells: list[Cell] | None = None,
) -> SweepResult:
    """Measure what ``results_dir`` does not hold yet of every cell of ``sweep``.

    A cell stored with all the sweep's metrics is skipped. A cell stored without some of them
    (throughput timed on another device, or not asked for then) is measured for those only;
    its record carries the other metrics over from the stored one (``reused`` says so). The
    accuracy cells that see the same clips are evaluated in one pass over them
    (:mod:`tokbench.benchmark.groups`): each video is decoded once per sweep.

    Args:
        sweep: what to measure.
        results_dir: the results folder; records go to ``runs/<machine>/...jsonl`` in it.
        retry_failed: re-run cells stored as ``error`` or ``oom``.
        progress: told what happens (:class:`Progress`).
        only: measure only the cells with these ids (one job of a submitit array).
        cells: ``plan(sweep)`` when the caller has it already.

    Returns:
        The records written (one per cell) and the number of cells skipped.

    Raises:
        OutputError: the results folder cannot take records (checked before measuring), or a
            record could not be written (the run stops; what was written stays).
    """
    cells = plan(sweep) if cells is None else cells
    if only is not None:
        cells = [c for c in cells if c.key in only]
    progress = progress or Progress()
    device = resolve_device(sweep.device)
    world = world_from_env(device)
    if world.distributed and sweep.protocol != "eval":
        raise TokbenchError(f"--protocol {sweep.protocol} trains a model per cell, which tokbench does not shard across "
                            "processes: run it without torchrun (or spread the cells over jobs with --launcher submitit)")
    if world.distributed and device.type == "cuda":
        device = torch.device("cuda", world.local_rank)  # one GPU per process
    # Only the raw runs under <results>/runs count for resume: curated copies beside them
    # (results/baseline, results/synthetic) are references, not work already done here.
    # Under torchrun rank 0 reads the store and every rank runs its list.
    runs = Path(results_dir) / "runs"
    pending = None
    if world.is_main:
        stored = stored_cells(runs) if runs.is_dir() else {}  # a file there: refused below
        pending = {}
        for c in cells:
            measure = pending_metrics(stored.get(c.key, []), sweep.metrics, c.speed_key, retry_failed=retry_failed)[0]
            if measure:
                pending[c.key] = measure
    pending = world.broadcast(pending)
    todo = [c for c in cells if c.key in pending]
    result = SweepResult(skipped=len(cells) - len(todo))
    if not todo:
        return result
    writer = RunWriter(results_dir, sweep.name) if world.is_main else None
    error = None
    if writer is not None:
        try:
            writer.check_writable()  # a folder that cannot take records fails now, not after a cell
        except TokbenchError as e:
            error = e
    world.gather_or_raise(None, error)
    env = collect_environment(device)
    run_id = world.broadcast(writer.run_id if writer else None)
    # Rank 0 claims each cell before measuring it (another sweep on the same folder may be
    # measuring it now), re-reads what is stored of it, and tells the other ranks what to
    # measure, so that all of them do the same.
    claims = CellClaims(results_dir, run_id, own_file=writer.path) if writer else None
    run = _Run(sweep, results_dir, retry_failed=retry_failed, world=world, device=device, writer=writer, claims=claims,
               run_id=run_id, env=env, progress=progress, result=result)
    if world.is_main:
        progress.start(len(todo))
    with writer or contextlib.nullcontext():
        try:
            for unit in units(todo, sweep, pending):
                run.unit(unit)
        finally:
            if claims is not None:
                claims.release_all()
                result.claimed = claims.skipped_claimed
    world.barrier()  # the other ranks wait for rank 0's last timing and record
    return result


def _carried_over(base: dict[str, Any], record: dict[str, Any], measure: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """What a new record of a cell takes from its stored record ``base``: the metrics not
    measured again (their fields, as measured then), the union of the metrics, and ``reused``
    naming where they come from. A throughput measured again replaces the stored one whole."""
    fresh = set(record) | {"method_state", "cell_seconds", "reused", "distributed", "content_dataset"}
    if "throughput" in measure:
        fresh |= set(THROUGHPUT_FIELDS)
    kept = [m for m in METRIC_NAMES if m in (base.get("metrics") or ()) and m not in measure]
    out = {k: v for k, v in base.items() if k not in fresh}
    out["metrics"] = [m for m in METRIC_NAMES if m in kept or m in measure]
    out["reused"] = {"run_id": base.get("run_id"), "created_utc": base.get("created_utc"), "metrics": kept,
                     "device_name": (base.get("env") or {}).get("device_name")}
    return out
