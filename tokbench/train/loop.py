"""The training loop every trainer uses.

AdamW with linear warm-up and cosine decay, one pass over the training set per epoch,
validation after each epoch with the dataset's headline metric, the best weights kept
(safetensors + card), and a resume file so a killed run continues where it stopped.
Deterministic under a seed on the CPU: the model init, the shuffling and the token-drop
draws all come from seeded generators.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from tokbench.data.batching import collate_clips
from tokbench.errors import TokbenchError
from tokbench.methods.random_drop import RandomDrop
from tokbench.weights import save_checkpoint

__all__ = ["TrainConfig", "TrainResult", "fit", "task_loss"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (recorded in every card)."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    seed: int = 0
    # Random token drop as augmentation: with probability ``token_drop``, a batch keeps
    # only a fraction of its tokens drawn uniformly in ``drop_range`` (what makes the model
    # tolerate missing tokens, as masked pre-training does for VideoMAE).
    token_drop: float = 0.5
    drop_range: tuple[float, float] = (0.1, 0.9)
    label_smoothing: float = 0.1
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise TokbenchError(f"invalid training settings: epochs and batch size >= 1, lr > 0 (got {self})")
        if not 0 <= self.token_drop <= 1 or not 0 < self.drop_range[0] <= self.drop_range[1] <= 1:
            raise TokbenchError(f"token_drop must be in [0, 1] and drop_range within (0, 1] (got {self})")


@dataclass
class TrainResult:
    best_metric: float
    best_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    weights: Path | None = None


def task_loss(task: str, logits: Tensor, batch: dict, *, num_verbs: int | None = None,
              label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy (single-label), BCE (multi-label), or verb CE + noun CE (egocentric,
    verb logits first)."""
    if task == "multilabel":
        return F.binary_cross_entropy_with_logits(logits, batch["label"].to(logits))
    if task == "verb_noun":
        verb = F.cross_entropy(logits[:, :num_verbs], batch["verb"].to(logits.device), label_smoothing=label_smoothing)
        noun = F.cross_entropy(logits[:, num_verbs:], batch["noun"].to(logits.device), label_smoothing=label_smoothing)
        return verb + noun
    return F.cross_entropy(logits, batch["label"].to(logits.device), label_smoothing=label_smoothing)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def fit(
    model: nn.Module,
    train_set,
    *,
    validate: Callable[[nn.Module], dict[str, float]] | None,
    metric: str,
    out: str | Path,
    config: TrainConfig,
    card: dict[str, Any],
    params: list[nn.Parameter] | None = None,
    forward: Callable[[nn.Module, dict, torch.Generator], Tensor] | None = None,
    loss: Callable[[Tensor, dict], Tensor] | None = None,
    device: torch.device | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train_set`` and keep the best weights by ``metric``.

    Args:
        model: the model (its trainable ``params``, default all).
        train_set: a tokbench dataset (items with ``video`` and labels).
        validate: returns the validation metrics of the model (called each epoch); ``None``
            trains a fixed schedule and keeps the last epoch (no model selection, so nothing
            is tuned on the split that is reported).
        metric: the key of ``validate``'s dict to select the best epoch by (higher is better).
        out: the best weights go to ``out`` (a ``.safetensors`` path) with its card; the
            resume state to ``out`` + ``.resume.pt``.
        card: what to write in the card (command, data...); the history and timing are added.
        forward: ``(model, batch, generator) -> logits``; by default ``model(batch["video"])``
            with random token-drop augmentation.
        loss: ``(outputs, batch) -> loss``; by default the dataset task's loss (method
            trainers, e.g. LITE's selector against oracle values, bring their own).
    """
    out = Path(out)
    device = device or next(model.parameters()).device
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    if loss is None:
        task, num_verbs = train_set.card.task, getattr(train_set, "num_verbs", None)

        def loss(logits: Tensor, batch: dict) -> Tensor:
            return task_loss(task, logits, batch, num_verbs=num_verbs, label_smoothing=config.label_smoothing)
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=gen, drop_last=True,
                        num_workers=config.num_workers, collate_fn=collate_clips)
    steps_per_epoch = len(loader)
    if steps_per_epoch == 0:
        raise TokbenchError(f"training set of {len(train_set)} clips is smaller than one batch ({config.batch_size})")
    total, warmup = config.epochs * steps_per_epoch, int(config.warmup_epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, total, warmup))
    forward = forward or _token_drop_forward(config)
    resume_path = out.with_name(out.name + ".resume.pt")
    result = TrainResult(best_metric=-math.inf, best_epoch=-1)
    start_epoch, spent = 0, 0.0
    if resume_path.exists():
        try:
            state = torch.load(resume_path, map_location="cpu", weights_only=False)
            settings = state["config"]
        except Exception as e:  # noqa: BLE001 - any reader failure means a damaged resume state
            reason = (str(e).strip().splitlines() or ["empty or truncated file"])[0]
            raise TokbenchError(f"cannot read the resume state {resume_path} ({type(e).__name__}: {reason}); "
                                "delete it to start again") from None
        if settings != asdict(config):
            raise TokbenchError(f"{resume_path} was made with other settings; delete it to start again")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, spent = state["epoch"] + 1, state["seconds"]
        result.best_metric, result.best_epoch, result.history = state["best_metric"], state["best_epoch"], state["history"]
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        model.train()
        batches = loader
        if progress:
            from tqdm import tqdm

            batches = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=None, leave=False)
        losses = []
        for batch in batches:
            value = loss(forward(model, batch, gen), batch)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(value.item())
        model.eval()
        # Without validation every epoch "improves": the last one is kept.
        metrics = validate(model) if validate is not None else {metric: float(epoch)}
        spent += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": sum(losses) / len(losses), **metrics, "seconds": round(spent, 1)}
        result.history.append(row)
        if progress:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {row['loss']:.3f}, val {metric} {metrics[metric]:.4f}, "
                  f"{spent:.0f} s", flush=True)
        if metrics[metric] > result.best_metric:
            result.best_metric, result.best_epoch = metrics[metric], epoch + 1
            save_checkpoint(model, out, {**card, "train": asdict(config), "best_epoch": epoch + 1,
                                         f"val_{metric}": metrics[metric], "history": result.history})
        torch.save({
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch, "seconds": spent,
            "best_metric": result.best_metric, "best_epoch": result.best_epoch, "history": result.history,
            "config": asdict(config),
        }, resume_path)
    result.seconds, result.weights = spent, out
    return result


def _token_drop_forward(config: TrainConfig):
    def forward(model, batch: dict, gen: torch.Generator) -> Tensor:
        video = batch["video"].to(next(model.parameters()).device)
        method = None
        if config.token_drop > 0 and torch.rand((), generator=gen).item() < config.token_drop:
            lo, hi = config.drop_range
            p = lo + (hi - lo) * torch.rand((), generator=gen).item()
            method = RandomDrop(p_ratio=p, seed=int(torch.randint(0, 2**31, (), generator=gen)))
        return model(video, method, clip_ids=batch["index"].to(video.device))

    return forward
