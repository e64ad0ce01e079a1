"""Cell claims: two sweeps writing to one results folder never measure the same cell twice.

Before measuring a cell, a sweep puts ``<results>/runs/.claims/<cell_id>.claim`` in place
and deletes it once the cell's record is on disk. The claim is written whole under a
temporary name and then hard-linked to its final name (``link`` fails if the name exists,
atomically, on local and NFS file systems), so a claim is complete from the instant another
sweep can see it. A sweep that finds a cell claimed skips it.

A claim names its owner by host, boot id, pid and the process's start time, so a pid that the
system gave to another process after the owner died does not keep the claim alive. A claim
is stale, and taken over, when

- on this host: the owner's process is gone, or the pid now belongs to a process started at
  another time, or the machine has rebooted since;
- from another host: it is older than ``TOKBENCH_CLAIM_TTL_H`` hours (default 24), since a
  process there cannot be checked (``tokbench run --clear-claims`` removes such claims at once);
- unreadable: only once it is older than a few seconds (a claim is never judged while a
  file system that does not support hard links is still writing it).

After taking a claim the sweep re-reads the store when other files have changed since it
last looked, and returns the cell's stored records, so that a cell another sweep finished in
the meantime is not measured again. Claims are ``.claim`` files, never ``*.jsonl``: loading
results does not see them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from tokbench.store import machine_name, run_files, stored_cells

__all__ = ["CellClaims", "clear_claims", "process_start", "boot_id"]

#: An unreadable claim younger than this is being written (see the module docstring).
YOUNG_S = 10.0


@functools.cache
def boot_id() -> str | None:
    """This boot's id (Linux), or ``None`` where the system does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field
    22), or ``None`` when there is no such process or the system does not say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        # The command name (field 2) may hold spaces and parentheses: fields follow the last ')'.
        return int(stat[stat.rindex(")") + 2:].split()[19])
    except (ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _owner() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": machine_name(), "boot_id": boot_id(), "pid": pid, "start": process_start(pid)}


def owner_alive(owner: dict[str, Any]) -> bool:
    """Whether the process named by a claim's owner (same host) still runs."""
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if owner.get("boot_id") is not None and boot_id() is not None and owner["boot_id"] != boot_id():
        return False  # rebooted since: every pid is new
    if not _alive(pid):
        return False
    start = owner.get("start")
    return start is None or process_start(pid) in (None, start)


def clear_claims(results_dir: str | Path) -> int:
    """Remove every claim under ``results_dir`` (for claims whose owner cannot be checked,
    such as another host's; never while a sweep runs on the folder). Returns how many."""
    folder = Path(results_dir) / "runs" / ".claims"
    removed = 0
    if folder.is_dir():
        for path in folder.glob("*.claim"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
    return removed


class CellClaims:
    """The claims of one sweep (one process) on cells of ``results_dir``.

    Args:
        results_dir: the results folder (claims live in ``runs/.claims`` inside it).
        run_id: this sweep's run id, written into its claims.
        own_file: this sweep's results file (its growth is not news of other sweeps).
    """

    def __init__(self, results_dir: str | Path, run_id: str, *, own_file: str | Path | None = None) -> None:
        self.runs = Path(results_dir) / "runs"
        self.folder = self.runs / ".claims"
        self.run_id = run_id
        self.own_file = None if own_file is None else str(own_file)
        self.held: set[str] = set()
        # Nothing seen yet: the first claim reads the store, which may have grown since the
        # sweep planned (another sweep started earlier may already have finished cells).
        self._seen: frozenset | None = None
        # The store as of the last re-read: kept, because a re-read for one cell may already
        # show another cell this sweep reaches later.
        self._stored: dict[str, list[dict[str, Any]]] = {}
        self.skipped_claimed = 0

    def _signature(self) -> frozenset:
        """(path, size) of the other sweeps' files: changes when one of them appends a record."""
        out = set()
        for p in run_files(self.runs):
            if str(p) == self.own_file:
                continue
            with contextlib.suppress(OSError):  # a file removed between listing and stat
                out.add((str(p), p.stat().st_size))
        return frozenset(out)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.claim"

    def _stale(self, raw: bytes, st: os.stat_result) -> bool:
        age_s = time.time() - st.st_mtime
        try:
            owner = json.loads(raw)
            if not isinstance(owner, dict):
                raise ValueError("not an object")
        except ValueError:
            return age_s > YOUNG_S  # being written now, or left half-written by a killed sweep
        if owner.get("host") == machine_name():
            return not owner_alive(owner)
        return age_s / 3600 > float(os.environ.get("TOKBENCH_CLAIM_TTL_H", "24"))

    def _place(self, path: Path) -> bool:
        """Put this sweep's claim at ``path``; ``False`` if a claim is there."""
        body = json.dumps({**_owner(), "run_id": self.run_id,
                           "claimed_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        tmp = self.folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        tmp.write_text(body)
        try:
            os.link(tmp, path)  # atomic, complete, and refused if the name exists
            return True
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create, then write
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(body)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def _remove_stale(self, path: Path, judged: bytes) -> bool:
        """Move the stale claim (whose content was ``judged``) out of the way; ``False`` if what
        was at ``path`` by then was another sweep's new claim (two sweeps judged the same stale
        claim: the one that moved it first has put its own claim there since), which is put
        back. Content, not the inode, tells them apart: a freed inode number is soon reused."""
        tomb = self.folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.stale"
        try:
            os.rename(path, tomb)  # atomic: of two sweeps, one moves any given file
        except FileNotFoundError:
            return True  # someone removed it: try to place ours
        try:
            if tomb.read_bytes() == judged:
                return True
            with contextlib.suppress(OSError):
                os.link(tomb, path)  # not the stale claim: put it back for its owner
            return False
        finally:
            tomb.unlink(missing_ok=True)

    def acquire(self, key: str) -> list[dict[str, Any]] | None:
        """Claim cell ``key``: its stored records as of now (oldest first; empty when none), or
        ``None`` when another live sweep holds it. The caller decides from the records whether
        anything is left to measure, and releases the claim if not."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        for _ in range(3):
            if self._place(path):
                self.held.add(key)
                break
            try:
                st, raw = path.stat(), path.read_bytes()
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not self._stale(raw, st) or not self._remove_stale(path, raw):
                self.skipped_claimed += 1
                return None
        else:
            self.skipped_claimed += 1
            return None
        signature = self._signature()
        if signature != self._seen:
            self._seen = signature
            self._stored = stored_cells(self.runs)
        return list(self._stored.get(key, ()))

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
