"""Results records: append-only JSONL files, loaded into pandas.

One record (a JSON object on one line) per measured cell. A sweep appends to its own file,
``<results>/runs/<machine>/<UTC stamp>_<name>_<pid>-<random>.jsonl``, and flushes each line to disk
at once, so a killed sweep loses at most the cell in flight and two sweeps never write to
the same file. Files are never rewritten. A damaged (torn) line is reported and skipped.

This module does not import torch: plotting and reports load results without it.

Record fields (schema version 1):

=====================  ==============================================================
``schema_version``     1
``run_id``/``cell_id`` the invocation; the cell's identity: a hash of everything that decides
                       its cost and accuracy, and nothing about the machine (see
                       ``tokbench.benchmark.runner.plan``)
``speed_id``           with throughput: the hash of ``cell_id`` and what decides its speed (the
                       device's name, batch size, warm-up, repeats, compile); ``speed_device``
``reused``             ``{"run_id", "created_utc", "metrics", "device_name"}`` when some metrics
                       were carried over from an earlier record of the cell instead of being
                       measured again (e.g. only throughput re-measured on another device)
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
                       ``repeats``, ``dtype``, ``device``, ``peak_mem_mb``;
                       ``clips_per_s_lo``/``_hi`` (95 % interval of the median),
                       ``speed_spread`` (IQR / median), ``calibration_gflops`` (a fixed
                       matmul before and after), ``load_per_cpu``, ``speed_flags``
                       (``busy``, ``noisy``; see ``tokbench.benchmark.timing``)
``attn_impl``          attention kernel that ran (``sdpa``, ``explicit``, or ``mixed`` when the
                       blocks differ; ``attn_impl_blocks`` per block); ``compiled`` (with
                       throughput: the timed model was ``torch.compile``'d)
``top1``, ``mAP``...   accuracy metrics (fractions), each with ``<metric>_lo``/``_hi``: its 95 %
                       bootstrap interval over the clips (``bootstrap``: resamples, seed,
                       level); ``predictions``: where the per-clip scores they come from are
                       (``{"folder": "predictions/<cell_id>", "rows", "dtype"}``, under the
                       results folder; ``tokbench.load_predictions``)
``cell_seconds``       wall time spent on the cell (FLOPs, accuracy and timing together)
``env``                versions, device name, threads, git revision (nested object;
                       ``env.<key>`` columns in pandas)
=====================  ==============================================================
"""

from __future__ import annotations

import contextlib
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

from tokbench.errors import OutputError, ResultsError, TokbenchWarning

__all__ = [
    "SCHEMA_VERSION", "StoreWarning", "RunWriter", "iter_records", "load_records", "load_results",
    "finished_cells", "stored_cells", "pending_metrics", "run_files", "machine_name", "output_folder", "output_file",
    "THROUGHPUT_FIELDS", "damage",
]

SCHEMA_VERSION = 1
STATUSES = ("ok", "unreachable", "oom", "error")
DONE_STATUSES = ("ok", "unreachable")  # re-running these cannot change them
DAMAGED = "skipped a damaged record (torn write or hand edit)"
#: What a record holds about its speed: measured on one device, never carried to another.
THROUGHPUT_FIELDS = (
    "clips_per_s", "ms_per_clip", "median_ms", "iqr_ms", "latency_ms", "batch_size", "warmup", "repeats", "dtype",
    "device", "peak_mem_mb", "throughput_skipped", "speed_id", "speed_device", "compiled", "speed_spread",
    "clips_per_s_lo", "clips_per_s_hi", "calibration_gflops", "load_per_cpu", "speed_flags",
)
_NUMBER_FIELDS = (
    "p_ratio", "gflops", "gflops_std", "params_m", "tokens_kept", "clips_per_s", "ms_per_clip", "median_ms", "iqr_ms",
    "peak_mem_mb", "cell_seconds", "clips_per_s_lo", "clips_per_s_hi", "speed_spread", "load_per_cpu",
    "top1", "top5", "mAP", "verb_top1", "noun_top1", "action_top1", "clips",
)
_TEXT_FIELDS = ("run_id", "created_utc", "method", "method_id", "backbone", "speed_id", "error")
_OBJECT_FIELDS = ("env", "method_params", "method_state", "reused", "bootstrap", "predictions")


class StoreWarning(TokbenchWarning):
    """A results file that could not be read completely (e.g. a torn last line)."""


def machine_name() -> str:
    """Host name made safe for a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "machine"


def utc_now() -> str:
    # Microseconds: two records of one cell written within a second still sort by time.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class RunWriter:
    """Appends records of one invocation to its own JSONL file.

    The file is created on the first record, so an invocation that fails before measuring
    anything leaves the results folder untouched.
    """

    def __init__(self, results_dir: str | Path, name: str = "sweep") -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        # At most 64 characters of the name: a file name has 255 bytes on most file systems.
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name)[:64] or "sweep"
        # pid + random suffix: unique across processes and across sweeps of one process.
        self.run_id = f"{stamp}-{os.getpid()}-{secrets.token_hex(3)}"
        self.path = Path(results_dir) / "runs" / machine_name() / f"{stamp}_{safe}_{self.run_id[len(stamp) + 1:]}.jsonl"
        self._file = None

    def check_writable(self) -> None:
        """Make this run's folder and write (then remove) a probe file in it, so that a folder
        that cannot take records fails before anything is measured, not after the first cell.

        Raises:
            OutputError: the folder cannot be made (a file in the way, a symlink loop, a name
                too long) or written (read-only, full).
        """
        folder = self.path.parent
        _folder(folder, f"--results: cannot make {folder}", make=False)  # a file in the way: say which
        probe = folder / f".probe-{self.run_id}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with open(probe, "x", encoding="utf-8") as f:
                f.write("{}\n" * 64)  # a record's worth of bytes: a full disk refuses it
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"--results: cannot write records in {folder}: {e.strerror or e}") from None
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and force it to disk before returning.

        Raises:
            OutputError: the record could not be written (disk full, folder gone); the records
                already written stay, and a torn last line is skipped by every reader.
        """
        line = json.dumps(record, sort_keys=True, allow_nan=True)
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # "x": fail rather than ever append to another sweep's file.
                self._file = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - held open across cells
            self._file.write(line + "\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as e:
            raise OutputError(f"could not write a record to {self.path}: {e.strerror or e}; the records written before "
                              "it are kept: free the space or fix the folder, then run the same command to resume") from None

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
                    reason = damage(record)
                except ValueError:
                    record, reason = None, "not JSON"
                if reason is not None:
                    message = f"{file}:{lineno}: {DAMAGED}" + ("" if record is None else f": {reason}")
                    if require_records and not found:
                        held.append((message, reason))
                    else:
                        warnings.warn(message, StoreWarning, stacklevel=2)
                    continue
                found = True
                for message, _ in held:
                    warnings.warn(message, StoreWarning, stacklevel=2)
                held.clear()
                yield record
    if held:
        where = held[0][0].split(f": {DAMAGED}")[0]
        raise ResultsError(f"{path}: no readable record ({len(held)} damaged or foreign line(s), the first at "
                           f"{where}: {held[0][1]}); results are the JSONL files written by 'tokbench run'")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def damage(record: Any) -> str | None:
    """Why ``record`` (one parsed line) is not a usable tokbench record, or ``None``.

    A record is a JSON object with a text ``cell_id`` and a known ``status``; the
    fields that readers compute with (numbers, texts, objects, the status) must have their
    types. A hand-edited ``"gflops": "12"`` or a foreign JSONL line (a test log) is damage,
    reported and skipped like a torn line, never a traceback in ``plot``/``report``/``check``.
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("cell_id"), str) or not record["cell_id"]:
        return "no cell_id (not a record written by 'tokbench run')"
    version = record.get("schema_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        return f"schema_version {version!r} is not an integer"
    if record.get("status") not in STATUSES:
        return f"status {record.get('status')!r} is not one of {', '.join(STATUSES)}"
    for name in (*_NUMBER_FIELDS, *(k for k in record if k.endswith(("_lo", "_hi")))):
        if record.get(name) is not None and not _is_number(record[name]):
            return f"{name} {record[name]!r} is not a number"
    for name in _TEXT_FIELDS:
        if record.get(name) is not None and not isinstance(record[name], str):
            return f"{name} {record[name]!r} is not text"
    for name in _OBJECT_FIELDS:
        if record.get(name) is not None and not isinstance(record[name], dict):
            return f"{name} is not an object"
    for name in ("metrics", "tokens_per_block", "latency_ms"):
        if record.get(name) is not None and not isinstance(record[name], list):
            return f"{name} is not a list"
    if record.get("dataset") is not None and not isinstance(record["dataset"], str):
        return f"dataset {record['dataset']!r} is not text"
    return None


def load_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record under ``path`` (see :func:`iter_records`).

    Raises:
        ResultsError: there are files under ``path`` but not one readable record in them.
    """
    return list(iter_records(path, require_records=True))


def finished_cells(path: str | Path, *, retry_failed: bool = False) -> set[str]:
    """Cell ids with a record under ``path`` (whatever it measured). Failed cells
    (``error``/``oom``) count as finished too unless ``retry_failed``."""
    statuses = DONE_STATUSES if retry_failed else STATUSES
    return {r["cell_id"] for r in iter_records(path) if r.get("status") in statuses}


def stored_cells(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Every record under ``path``, by ``cell_id``, oldest first (by ``created_utc``, then file order)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in iter_records(path):
        out.setdefault(record["cell_id"], []).append(record)
    for records in out.values():
        records.sort(key=lambda r: str(r.get("created_utc") or ""))  # stable: file order among equals
    return out


def _speed_covered(record: dict[str, Any], speed_id: str | None) -> bool:
    # A privileged method's throughput is never measured (it needs the label), on any device.
    return "throughput_skipped" in record or (speed_id is not None and record.get("speed_id") == speed_id)


def pending_metrics(records: list[dict[str, Any]], metrics: Iterable[str], speed_id: str | None, *,
                    retry_failed: bool = False) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """What of a cell is still to measure, given its stored ``records`` (oldest first).

    Cost and accuracy do not depend on the machine; throughput does, so a stored throughput
    counts only when its ``speed_id`` (device, batch, repeats, ...) is this sweep's.

    - an ``unreachable`` record: nothing (the method cannot reach this P anywhere);
    - a failed (``error``/``oom``) record newer than any ``ok`` one that asked for every
      metric wanted now (throughput on this device): nothing, unless ``retry_failed``;
    - otherwise the wanted metrics that the newest ``ok`` record lacks, with that record as
      the one to carry the others over from (``None`` when there is none).

    Returns:
        (metrics to measure, in the order given; the record to carry over from).
    """
    metrics = tuple(metrics)
    if any(r.get("status") == "unreachable" for r in records):
        return (), None
    base = next((r for r in reversed(records) if r.get("status") == "ok"), None)

    def covers(record: dict[str, Any], metric: str) -> bool:
        asked = record.get("metrics") or ()
        return metric in asked and (metric != "throughput" or _speed_covered(record, speed_id))

    if not retry_failed:
        start = max((i + 1 for i, r in enumerate(records) if r is base), default=0)
        newer = records[start:]
        if any(all(covers(r, m) for m in metrics) for r in newer if r.get("status") in ("error", "oom")):
            return (), None
    todo = tuple(m for m in metrics if base is None or not covers(base, m))
    return todo, (base if todo else None)


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
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder: give a file path, e.g. {path / ('NAME' + suffix)}")
    _folder(path.parent, f"{option} {path}: cannot make its folder", make=make)
    return path


def _folder(folder: Path, what: str, *, make: bool) -> None:
    try:
        blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    except OSError as e:  # a name too long, a symlink loop
        raise OutputError(f"{what}: {e.strerror or e}") from None
    if blocker is not None and not blocker.is_dir():
        raise OutputError(f"{what}: {blocker} is a file, not a folder")
    if make:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{what}: {e.strerror or e}") from None
