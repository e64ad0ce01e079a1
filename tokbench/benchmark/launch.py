"""A sweep across jobs: ``tokbench run --launcher submitit`` submits the cells as a SLURM job
array through submitit.

The cells not yet in the store are dealt into ``jobs`` jobs by whole groups (the accuracy
cells that share one pass over the data, :func:`deal_groups`); job ``i`` runs
:func:`run_cells` on its share, which is :func:`~tokbench.benchmark.runner.run_sweep`
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

from tokbench.benchmark.runner import run_sweep, units
from tokbench.errors import TokbenchError
from tokbench.plugins import load_plugins
from tokbench.store import load_records, pending_metrics, stored_cells

__all__ = ["SlurmOptions", "deal", "deal_groups", "run_cells", "submit", "submit_sweep", "pending_keys"]


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


def deal_groups(groups: list[list[str]], jobs: int) -> list[list[str]]:
    """Cell ids of whole groups (cells evaluated in one pass over the data) dealt into at most
    ``jobs`` jobs: while there are fewer groups than jobs, the largest group is halved (its
    clips are then decoded by two jobs); then each group, largest first, goes to the job with
    the fewest cells so far. A job thus decodes each of its datasets once."""
    if jobs < 1:
        raise TokbenchError(f"--jobs must be >= 1, got {jobs}")
    groups = [list(g) for g in groups if g]
    while 0 < len(groups) < jobs and max(len(g) for g in groups) > 1:
        i = max(range(len(groups)), key=lambda j: len(groups[j]))
        half = (len(groups[i]) + 1) // 2
        groups[i:i + 1] = [groups[i][:half], groups[i][half:]]  # in place: the plan order stays
    shares: list[list[str]] = [[] for _ in range(min(jobs, len(groups)))]
    for group in sorted(groups, key=len, reverse=True):
        min(shares, key=len).extend(group)
    return [s for s in shares if s]


def run_cells(sweep, results_dir: str, keys: list[str], plugins: list[str], retry_failed: bool = False) -> dict[str, Any]:
    """One job: load the same plug-ins, then measure the cells ``keys`` of ``sweep`` that
    are not yet stored. Returns counts for the submitter's summary."""
    load_plugins(plugins)
    result = run_sweep(sweep, results_dir=results_dir, only=frozenset(keys), retry_failed=retry_failed)
    statuses: dict[str, int] = {}
    for record in result.records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    return {"written": len(result.records), "skipped": result.skipped, "statuses": statuses,
            "path": str(result.path) if result.path else None}


def submit(sweep, results_dir: str | Path, keys: list[str] | list[list[str]], *, jobs: int, folder: str | Path,
           cluster: str | None, slurm: SlurmOptions, plugins: list[str], retry_failed: bool = False) -> list:
    """Submit ``keys`` (cell ids, or groups of them that should share a job) as a job array;
    returns the submitit jobs.

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
    groups = deal_groups(keys, jobs) if keys and isinstance(keys[0], list) else deal(keys, jobs)
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


def pending_keys(sweep, cells, results_dir: str | Path, *, retry_failed: bool = False) -> list[str]:
    """Ids of the cells of ``cells`` with something still to measure under ``results_dir``."""
    stored = stored_cells(Path(results_dir) / "runs")
    return [c.key for c in cells
            if pending_metrics(stored.get(c.key, []), sweep.metrics, c.speed_key, retry_failed=retry_failed)[0]]


def submit_sweep(sweep, cells, results_dir: str | Path, *, retry_failed: bool, jobs: int | None, folder: str | Path | None,
                 cluster: str | None, slurm: SlurmOptions, plugins: list[str], wait: bool, say) -> tuple[list[dict], int]:
    """``tokbench run --launcher submitit``: the cells not yet stored as a job array of
    ``jobs`` jobs (default one per 8 cells, at most 64); with ``wait``, wait for them.
    ``say`` receives the lines to show the user.

    Returns:
        (the records the jobs wrote, exit status: 1 if a job failed).
    """
    import math

    results_dir = Path(results_dir)
    todo = pending_keys(sweep, cells, results_dir, retry_failed=retry_failed)
    pending = set(todo)
    # Whole groups to a job where possible: the accuracy cells of a group share one data pass.
    groups = [[c.key for c in unit] for unit in units([c for c in cells if c.key in pending], sweep,
                                                      {k: sweep.metrics for k in pending})]
    if not todo:
        say(f"nothing to submit: all {len(cells)} cells are in {results_dir}")
        return [], 0
    jobs = jobs or max(1, min(64, math.ceil(len(todo) / 8)))
    folder = folder or results_dir / "submitit"
    submitted = submit(sweep, results_dir, groups, jobs=jobs, folder=folder, cluster=cluster, slurm=slurm,
                       plugins=plugins, retry_failed=retry_failed)
    say(f"submitted {len(submitted)} job(s) for {len(todo)} of {len(cells)} cells (first job {submitted[0].job_id}); "
        f"logs in {folder}; records go to {results_dir}/runs; submit the same command again to resume")
    if not wait:
        return [], 0
    failed, written, statuses = [], 0, {}
    for job in submitted:
        try:
            out = job.result()
        except Exception as e:  # noqa: BLE001 - a dead job is reported; its cells stay to resume
            failed.append(f"{job.job_id}: {' '.join(str(e).split())[:200]}")
            continue
        written += out["written"]
        for status, count in out["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) or "none"
    say(f"jobs done: {written} records written ({counts}); {len(failed)} job(s) failed")
    for line in failed:
        say(f"  failed job {line}")
    keys = set(todo)
    records = [r for r in load_records(results_dir / "runs") if r.get("cell_id") in keys]
    return records, 1 if failed else 0
