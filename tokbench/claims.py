"""Cell claims: two sweeps writing to one results folder never measure the same cell twice.

Before measuring a cell, a sweep creates ``<results>/runs/.claims/<cell_id>.claim``
exclusively (``O_CREAT | O_EXCL``, atomic on local and NFSv3+ file systems), writes its
host, pid and run id into it, and deletes it once the cell's record is on disk. A sweep that
finds a cell claimed skips it. A claim left by a killed sweep is stale: on the same host
when its pid is no longer running; from another host when it is older than
``TOKBENCH_CLAIM_TTL_H`` hours (default 24), since a pid there cannot be checked. Stale
claims are taken over, so ``tokbench run`` after a crash resumes every missing cell.

After taking a claim the sweep re-reads the store when other files have changed since it
planned, so a cell that another sweep finished in the meantime is not measured again.
Claims are ``.claim`` files, never ``*.jsonl``: loading results does not see them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from tokbench.store import finished_cells, machine_name, run_files

__all__ = ["CellClaims"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class CellClaims:
    """The claims of one sweep (one process) on cells of ``results_dir``.

    Args:
        results_dir: the results folder (claims live in ``runs/.claims`` inside it).
        run_id: this sweep's run id, written into its claims.
        retry_failed: whether a stored ``error``/``oom`` record counts as not done.
        own_file: this sweep's results file (its growth is not news of other sweeps).
    """

    def __init__(self, results_dir: str | Path, run_id: str, *, retry_failed: bool = False,
                 own_file: str | Path | None = None) -> None:
        self.runs = Path(results_dir) / "runs"
        self.folder = self.runs / ".claims"
        self.run_id, self.retry_failed = run_id, retry_failed
        self.own_file = None if own_file is None else str(own_file)
        self.held: set[str] = set()
        # Nothing seen yet: the first claim reads the store, which may have grown since the
        # sweep planned (another sweep started earlier may already have finished cells).
        self._seen: frozenset = frozenset()
        # Cells other sweeps finished, as of the last re-read of the store: kept, because a
        # re-read for one cell may already show another cell this sweep reaches later.
        self._finished: set[str] = set()
        self.skipped_claimed = 0

    def _signature(self) -> frozenset:
        """(path, size) of the other sweeps' files: changes when one of them appends a record."""
        return frozenset((str(p), p.stat().st_size) for p in run_files(self.runs)
                         if p.exists() and str(p) != self.own_file)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.claim"

    def _stale(self, path: Path) -> bool:
        try:
            owner = json.loads(path.read_text())
            age_h = (time.time() - path.stat().st_mtime) / 3600
        except (OSError, ValueError):
            return True  # half-written by a process killed while claiming, or already gone
        if owner.get("host") == machine_name():
            return not _alive(int(owner.get("pid", -1)))
        return age_h > float(os.environ.get("TOKBENCH_CLAIM_TTL_H", "24"))

    def acquire(self, key: str) -> bool:
        """Claim cell ``key``; ``False`` when another live sweep holds it or it was finished
        since this sweep planned."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(path):
                    self.skipped_claimed += 1
                    return False
                path.unlink(missing_ok=True)  # a dead sweep's claim: take it over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": machine_name(), "pid": os.getpid(), "run_id": self.run_id,
                           "claimed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
            self.held.add(key)
            break
        else:
            self.skipped_claimed += 1
            return False
        signature = self._signature()
        if signature != self._seen:
            self._seen = signature
            self._finished = finished_cells(self.runs, retry_failed=self.retry_failed)
        if key in self._finished:
            self.release(key)  # finished by another sweep since we planned
            return False
        return True

    def release(self, key: str) -> None:
        """Drop the claim on ``key`` (after its record is on disk, or when giving it up)."""
        if key in self.held:
            self._path(key).unlink(missing_ok=True)
            self.held.discard(key)

    def release_all(self) -> None:
        for key in list(self.held):
            self.release(key)
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty: other sweeps' claims stay
