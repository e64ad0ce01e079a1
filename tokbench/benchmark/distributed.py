"""One evaluation across processes: ``torchrun --nproc-per-node N -m tokbench run ...``.

torchrun (single- or multi-node) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; tokbench
then joins a process group (gloo on CPU, NCCL on CUDA, one GPU per process by
``LOCAL_RANK``) and, for every cell:

- shards the evaluation set by position, rank ``r`` of ``N`` taking items ``r, r + N, ...``,
  so every video is evaluated exactly once (no padding duplicates, unlike
  ``DistributedSampler``'s default);
- gathers every rank's view-averaged logits, sorts them by video index and scores them on
  every rank: the metrics are those of one process over the whole set;
- counts FLOPs and times throughput on rank 0 only (timing while the other ranks compute
  would measure contention), and writes the one record from rank 0.

A rank that fails a cell does not hang the others: every rank reports success or its error
in the same gather, and all of them record the cell as failed.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch

from tokbench.data.base import DataError
from tokbench.data.batching import ItemsAt
from tokbench.errors import UnreachableError

__all__ = ["is_main_process", "process_group_session", "World", "SINGLE", "world_from_env", "shard", "Shard"]


@dataclass(frozen=True)
class World:
    """This process's place among the evaluation processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` in one process."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather_or_raise(self, value: Any, error: BaseException | None) -> list[Any]:
        """Every rank's ``value``, or, when any rank failed (``error``), a failure raised on
        every rank alike, so that no rank waits in a later collective for the others: a rank
        raises its own error, the others rebuild it (an unreachable P, unreadable data and
        out-of-memory keep their types; anything else becomes a RuntimeError naming the rank)."""
        reports = self.all_gather(value if error is None else _Failure(type(error).__name__, str(error)))
        for rank, report in enumerate(reports):
            if isinstance(report, _Failure):
                if error is not None:
                    raise error
                raise report.rebuild(rank)
        return reports

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def describe(self) -> dict[str, Any] | None:
        """Stored with records made by several processes (``None`` for one)."""
        return {"world_size": self.size, "backend": self.backend} if self.distributed else None


SINGLE = World()


@dataclass(frozen=True)
class _Failure:
    """A rank's exception as it travels to the other ranks."""

    kind: str
    message: str

    def rebuild(self, rank: int) -> Exception:
        if self.kind == "UnreachableError":
            return UnreachableError(self.message)
        if self.kind == "DataError":
            return DataError(self.message)
        if self.kind == "OutOfMemoryError":
            return torch.cuda.OutOfMemoryError(f"rank {rank}: {self.message}")
        return RuntimeError(f"rank {rank}: {self.kind}: {self.message}")


def world_from_env(device: torch.device) -> World:
    """Join the process group torchrun describes in the environment (idempotent); one
    process (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) needs no group.

    The timeout is long (``TOKBENCH_DIST_TIMEOUT_MIN``, default 120 minutes) since rank 0
    times throughput and counts FLOPs while the other ranks wait for the next cell.
    """
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        minutes = float(os.environ.get("TOKBENCH_DIST_TIMEOUT_MIN", "120"))
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=minutes))
    return World(rank=rank, size=size, local_rank=local_rank, backend=backend)


class Shard(ItemsAt):
    """Items ``rank, rank + size, ...`` of ``dataset``; every other attribute (``card``,
    ``views``, ``num_verbs``, ...) is the dataset's. Items keep their own ``index``."""

    def __init__(self, dataset, rank: int, size: int) -> None:
        # Videos the dataset could not find are reported once, by rank 0.
        super().__init__(dataset, range(rank, len(dataset), size),
                         missing=list(getattr(dataset, "missing", [])) if rank == 0 else [])

    def __repr__(self) -> str:
        return f"Shard({self.dataset!r}, {self.positions.start} of every {self.positions.step})"


def shard(dataset, world: World):
    """``dataset`` itself in one process, else this rank's :class:`Shard`."""
    return Shard(dataset, world.rank, world.size) if world.distributed else dataset


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch (or a plain process): the one that talks and writes."""
    return os.environ.get("RANK", "0") == "0"


@contextlib.contextmanager
def process_group_session():
    """Tear down the process group a sweep joined (``world_from_env``) when the sweep ends,
    however it ends."""
    try:
        yield
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
