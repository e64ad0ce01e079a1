"""Results records: append-only JSONL files, loaded into pandas.

One record (a JSON object on one line) per measured cell. A sweep appends to its own file,
``<results>/runs/<machine>/<UTC stamp>_<name>_<pid>-<random>.jsonl``, and flushes each line to disk
at once, so a killed sweep loses at most the cell in flight and two sweeps never write to
the same file. Files are never rewritten. A damaged (torn) line is reported and skipped.

This module does not import torch: plotting and reports load results without it.

Record fields (schema version 1):

=====================  ==============================================================
``schema_version``     1
``run_id``/``cell_id`` the invocation; the cell's stable key (spec hash)
``created_utc``        ISO time the record was written
``status``/``error``   ``ok | unreachable | oom | error`` and the message
``backbone``           variant name, with ``weights`` (``random-init`` or file@sha256),
                       ``num_classes``, ``frames``, ``img_size``, ``tubelet``, ``patch``,
                       ``num_patches``, ``embed_dim``, ``depth``
``dataset``            ``null`` for cost-only runs; ``protocol`` (``eval``), ``seed``
``method``             registered name; ``method_id`` (canonical spec), ``method_params``,
                       ``privileged``, ``embeds`` (FLOP convention: ``all``/``kept``)
``p_ratio``            nominal keep ratio (the sweep label)
``tokens_kept``        mean patch tokens entering block 1; ``tokens_per_block`` (mean, all)
``gflops``             per view, fvcore convention (1 multiply-add = 1 FLOP);
                       ``gflops_std`` over clips, ``flop_counter``, ``params_m``
``clips_per_s``        throughput; ``ms_per_clip``, ``median_ms``/``iqr_ms`` (per batch),
                       ``latency_ms`` (raw samples), ``batch_size``, ``warmup``,
                       ``repeats``, ``dtype``, ``device``, ``peak_mem_mb``
``attn_impl``          attention kernel that ran (``sdpa`` or ``explicit``); ``compiled``
``cell_seconds``       wall time spent on the cell (FLOPs, accuracy and timing together)
``env``                versions, device name, threads, git revision (nested object;
                       ``env.<key>`` columns in pandas)
=====================  ==============================================================
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import warnings
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA_VERSION", "StoreWarning", "RunWriter", "iter_records", "load_records", "load_results",
    "finished_cells", "run_files", "machine_name", "output_folder", "output_file",
]

SCHEMA_VERSION = 1
STATUSES = ("ok", "unreachable", "oom", "error")
DONE_STATUSES = ("ok", "unreachable")  # re-running these cannot change them
DAMAGED = "skipped a damaged record (torn write or hand edit)"


class StoreWarning(UserWarning):
    """A results file that could not be read completely (e.g. a torn last line)."""


def machine_name() -> str:
    """Host name made safe for a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "machine"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunWriter:
    """Appends records of one invocation to its own JSONL file.

    The file is created on the first record, so an invocation that fails before measuring
    anything leaves the results folder untouched.
    """

    def __init__(self, results_dir: str | Path, name: str = "sweep") -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name) or "sweep"
        # pid + random suffix: unique across processes and across sweeps of one process.
        self.run_id = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
        self.path = Path(results_dir) / "runs" / machine_name() / f"{stamp}_{safe}_{self.run_id[len(stamp) + 1:]}.jsonl"
        self._file = None

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and force it to disk before returning."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # "x": fail rather than ever append to another sweep's file.
            self._file = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - held open across cells
        line = json.dumps(record, sort_keys=True, allow_nan=True)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_files(path: str | Path) -> list[Path]:
    """The JSONL files under ``path`` (a results folder, a runs folder, or one file)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    return []


def iter_records(path: str | Path, *, require_records: bool = False) -> Iterator[dict[str, Any]]:
    """Yield every readable record under ``path``; damaged lines raise a :class:`StoreWarning`
    naming the file and line, and are skipped.

    With ``require_records``, a path whose lines are all damaged is not results at all
    (a wrong file, or garbage): :class:`~tokbench.errors.ResultsError` instead of a warning
    per line.
    """
    held: list[str] = []  # with require_records: damaged lines held until a record shows these are results
    found = False
    for file in run_files(path):
        with open(file, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    if require_records and not found:
                        held.append(f"{file}:{lineno}")
                    else:
                        warnings.warn(f"{file}:{lineno}: {DAMAGED}", StoreWarning, stacklevel=2)
                    continue
                found = True
                for where in held:
                    warnings.warn(f"{where}: {DAMAGED}", StoreWarning, stacklevel=2)
                held.clear()
                yield record
    if held:
        from tokbench.errors import ResultsError

        raise ResultsError(f"{path}: no readable record ({len(held)} damaged line(s), the first at {held[0]}); "
                           "results are the JSONL files written by 'tokbench run'")


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record under ``path`` (see :func:`iter_records`).

    Raises:
        ResultsError: there are files under ``path`` but not one readable record in them.
    """
    return list(iter_records(path, require_records=True))


def finished_cells(path: str | Path, *, retry_failed: bool = False) -> set[str]:
    """Cell ids already measured under ``path``. Failed cells (``error``/``oom``) count as
    finished too unless ``retry_failed``."""
    statuses = DONE_STATUSES if retry_failed else STATUSES
    return {r["cell_id"] for r in iter_records(path) if r.get("status") in statuses and "cell_id" in r}


def load_results(path: str | Path | Iterable[str | Path]):
    """Load records into a pandas DataFrame, one row per record.

    Args:
        path: a results folder (searched recursively for ``*.jsonl``), one file, or a list.

    Nested objects become dotted columns (``env.torch_version``,
    ``method_params.seed``); lists (``tokens_per_block``, ``latency_ms``) stay lists.

    Raises:
        ResultsError: a path with files but not one readable record in them.
    """
    import pandas as pd

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    records = [r for p in paths for r in iter_records(p, require_records=True)]
    if not records:
        return pd.DataFrame(columns=["status", "backbone", "method", "p_ratio", "gflops", "clips_per_s"])
    return pd.json_normalize(records, max_level=1)


def output_folder(path: str | Path, option: str = "--out", *, make: bool = True) -> Path:
    """``path`` as a folder to write into, made with its parents (``make=False``: only checked,
    to fail before long work rather than after it).

    Raises:
        OutputError: ``path``, or a folder on the way to it, is a file (``option`` names it).
    """
    path = Path(path)
    _folder(path, f"{option} {path}: cannot make the folder", make=make)
    return path


def output_file(path: str | Path, option: str = "--out", *, suffix: str = ".png", make: bool = True) -> Path:
    """``path`` as a ``suffix`` file to write, its folder made (``make=False``: only checked).

    Raises:
        OutputError: ``path`` is a folder, or a folder on the way to it is a file.
    """
    from tokbench.errors import OutputError

    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: give a file path, e.g. {path / ('NAME' + suffix)}")
    _folder(path.parent, f"{option} {path}: cannot make its folder", make=make)
    return path


def _folder(folder: Path, what: str, *, make: bool) -> None:
    from tokbench.errors import OutputError

    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise OutputError(f"{what}: {blocker} is a file, not a folder")
    if make:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{what}: {e.strerror or e}") from None
