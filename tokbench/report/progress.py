"""What ``tokbench run`` shows while it measures: on a terminal a bar over the clips of the
current data pass (which dataset, how many cells, an ETA) with the cells done; in a log (a
file, CI, SLURM) one plain line per finished cell and one every ``every`` seconds of a long
pass, so a 15-minute run never goes quiet."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from tokbench.benchmark.runner import Cell, Progress

__all__ = ["RunProgress"]


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


def _headline(record: dict[str, Any]) -> str:
    for metric in ("top1", "mAP", "action_top1"):
        if record.get(metric) is not None:
            return f" {metric} {100 * record[metric]:.1f}"
    return ""


class RunProgress(Progress):
    """A :class:`~tokbench.benchmark.runner.Progress` that writes to ``stream``."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.bar = None
        self.total = self.done = 0
        self.started = time.perf_counter()
        self.label, self.pass_clips, self.pass_done, self.last_line = "", 0, 0, 0.0

    def _say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def start(self, cells: int) -> None:
        self.total, self.started = cells, time.perf_counter()

    def group(self, label: str, cells: int, clips: int) -> None:
        self._close()
        self.label, self.pass_clips, self.pass_done, self.last_line = label, clips, 0, time.perf_counter()
        if not clips:
            return
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=clips, desc=label, unit="clip", file=self.stream, leave=False, dynamic_ncols=True)
            self.bar.set_postfix_str(f"cells {self.done}/{self.total}")
        else:
            self._say(f"{label}: one pass over {clips} clips")

    def clips(self, n: int) -> None:
        self.pass_done += n
        if self.bar is not None:
            self.bar.update(n)
        elif time.perf_counter() - self.last_line >= self.every:
            self.last_line = time.perf_counter()
            self._say(f"{self.label}: {self.pass_done}/{self.pass_clips} clips")

    def cell_done(self, cell: Cell, record: dict[str, Any]) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)  # from the cells measured so far
        if self.bar is not None:
            self.bar.set_postfix_str(f"cells {self.done}/{self.total}, ETA {_duration(eta)}")
            return
        where = f"{cell.dataset} / " if cell.dataset else ""
        self._say(f"[{self.done}/{self.total}] {where}{cell.method_id} P={cell.p_ratio:g}: {record['status']}"
                  f"{_headline(record)} ({record.get('cell_seconds', 0):.1f} s; {_duration(elapsed)} elapsed, "
                  f"ETA {_duration(eta)})")

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self._close()
