"""A sweep across jobs: ``tokbench run --launcher submitit`` submits the cells as a SLURM job
array through submitit.

The cells not yet in the store are dealt round-robin into ``jobs`` groups; job ``i`` runs
:func:`run_cells` on its group, which is :func:`~tokbench.benchmark.runner.run_sweep`
restricted to those cell ids. Every job appends to its own file in the same results folder
(the store's one-file-per-process layout), so jobs never contend for a file, and a job that
dies or is pre-empted loses at most its cell in flight: submitting the same command again
plans only the cells still missing (resume). On a machine without SLURM, submitit's
``local`` executor runs the jobs as local processes (how the tests run it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokbench.errors import TokbenchError

__all__ = ["SlurmOptions", "deal", "run_cells", "submit"]


@dataclass(frozen=True)
class SlurmOptions:
    """What the job array asks the cluster for (ignored by the local executor)."""

    partition: str | None = None
    gpus_per_node: int = 0
    cpus_per_task: int = 8
    mem_gb: int | None = None
    timeout_min: int = 240
    array_parallelism: int = 32
    account: str | None = None
    constraint: str | None = None
    qos: str | None = None


def deal(keys: list[str], jobs: int) -> list[list[str]]:
    """Cell ids dealt round-robin into at most ``jobs`` non-empty groups (neighbouring cells,
    often one model, spread over jobs so each job's share of slow methods is similar)."""
    if jobs < 1:
        raise TokbenchError(f"--jobs must be >= 1, got {jobs}")
    groups = [keys[i::jobs] for i in range(min(jobs, len(keys)))]
    return [g for g in groups if g]


def run_cells(sweep, results_dir: str, keys: list[str], plugins: list[str], retry_failed: bool = False) -> dict[str, Any]:
    """One job: load the same plug-ins, then measure the cells ``keys`` of ``sweep`` that
    are not yet stored. Returns counts for the submitter's summary."""
    from tokbench.benchmark.runner import run_sweep
    from tokbench.plugins import load_plugins

    load_plugins(plugins)
    result = run_sweep(sweep, results_dir=results_dir, only=frozenset(keys), retry_failed=retry_failed)
    statuses: dict[str, int] = {}
    for record in result.records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return {"written": len(result.records), "skipped": result.skipped, "statuses": statuses,
            "path": str(result.path) if result.path else None}


def submit(sweep, results_dir: str | Path, keys: list[str], *, jobs: int, folder: str | Path,
           cluster: str | None, slurm: SlurmOptions, plugins: list[str], retry_failed: bool = False) -> list:
    """Submit ``keys`` as a job array; returns the submitit jobs.

    Args:
        cluster: ``None`` (SLURM when ``sbatch`` exists, else local), ``slurm``, ``local``
            or ``debug`` (in this process, for debugging).

    Raises:
        TokbenchError: submitit is not installed, or the cluster cannot be used.
    """
    try:
        import submitit
    except ImportError:
        raise TokbenchError("--launcher submitit needs submitit: pip install 'tokbench[cluster]'") from None
    groups = deal(keys, jobs)
    try:
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
    except Exception as e:  # noqa: BLE001 - e.g. "slurm" asked for where there is no sbatch
        raise TokbenchError(f"--launcher submitit: cannot use cluster {cluster or 'auto'}: {e}") from None
    params: dict[str, Any] = {"name": f"tokbench-{sweep.name}", "timeout_min": slurm.timeout_min,
                              "tasks_per_node": 1, "nodes": 1, "cpus_per_task": slurm.cpus_per_task}
    if slurm.gpus_per_node:
        params["gpus_per_node"] = slurm.gpus_per_node
    if slurm.mem_gb:
        params["mem_gb"] = slurm.mem_gb
    for key in ("partition", "account", "constraint", "qos"):
        if getattr(slurm, key):
            params[f"slurm_{key}"] = getattr(slurm, key)
    params["slurm_array_parallelism"] = slurm.array_parallelism
    executor.update_parameters(**params)
    results_dir = str(Path(results_dir).resolve())
    n = len(groups)
    return executor.map_array(run_cells, [sweep] * n, [results_dir] * n, groups, [list(plugins)] * n, [retry_failed] * n)
