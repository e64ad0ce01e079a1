"""``tokbench check``: compare results with a committed baseline, cell by cell.

Pure functions of record lists (no torch), so a user's CI can run them on any machine:

- a cell is identified by its ``cell_id`` (the hash of everything that determines its
  results: geometry, weights, method and options, P, data, protocol); several records of
  one cell (re-runs) count as the newest;
- **cost** (``gflops``, ``params_m``, ``tokens_kept``) must match exactly (relative 1e-9:
  fvcore counts are deterministic);
- **accuracy** (every metric the baseline recorded) may not fall by more than
  ``accuracy_tol`` (absolute); with ``intervals``, a larger drop is still not a regression
  while the current value lies inside the baseline record's 95 % interval (``<metric>_lo``:
  the clip bootstrap; for comparing runs that differ by seed or by clips, where such a
  drop is noise); a rise is reported, not failed;
- **throughput** (``clips_per_s``) is compared only when both records have the same
  ``speed_id`` (the same cell timed on a device of the same name with the same settings),
  and fails only below ``(1 - speed_band)`` x the baseline (with recorded intervals: the
  current interval's top below that fraction of the baseline interval's bottom, so the
  spread each run measured widens the band); cells timed on another device or flagged
  ``busy`` are counted as not compared, with one line naming the two devices. Cell ids hold nothing
  about the machine, so cost and accuracy compare across CPU models and machines;
- a **status** that leaves ``ok``/``unreachable``, or a baseline cell with no current
  record, is a regression; current cells the baseline lacks are counted as new.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokbench.errors import OutputError, ResultsError
from tokbench.store import damage, iter_records, output_folder, run_files

__all__ = ["Finding", "ACCURACY_FIELDS", "COST_FIELDS", "compare", "latest_by_cell", "markdown", "write_baseline"]

#: Accuracy metrics a record may hold (tokbench.data.metrics), higher is better.
ACCURACY_FIELDS = ("top1", "top5", "mAP", "verb_top1", "noun_top1", "action_top1")
#: Cost fields that must not change at all.
COST_FIELDS = ("gflops", "params_m", "tokens_kept")


@dataclass(frozen=True)
class Finding:
    """One difference between a baseline cell and the current one."""

    cell: str  # "dataset / method_id / P=..."
    field: str
    baseline: Any
    current: Any
    regression: bool
    note: str = ""


def latest_by_cell(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The newest record of each ``cell_id`` (by ``created_utc``, then file order; the rule of
    :func:`tokbench.report.selection.newest_positions`, which plot and report use too)."""
    from tokbench.report.selection import newest_positions

    cells = [r.get("cell_id") for r in records]
    keep = newest_positions(cells, [r.get("created_utc") for r in records])
    return {cells[i]: records[i] for i in keep if cells[i] is not None}


def _label(record: dict[str, Any]) -> str:
    dataset = record.get("dataset") or record.get("backbone") or "?"
    return f"{dataset} / {record.get('method_id', record.get('method'))} / P={record.get('p_ratio')}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def compare(baseline: list[dict[str, Any]], current: list[dict[str, Any]], *, accuracy_tol: float = 1e-9,
            speed_band: float | None = 0.5, intervals: bool = False) -> tuple[list[Finding], dict[str, int]]:
    """Differences between ``baseline`` and ``current`` records (see the module docstring).

    Args:
        accuracy_tol: largest allowed drop of an accuracy metric (absolute, in [0, 1] units).
        speed_band: allowed relative throughput drop on the same device; ``None`` skips speed.
        intervals: a drop beyond ``accuracy_tol`` to a value still inside the baseline's 95 %
            interval is reported, not failed.

    Returns:
        (findings, counts) with counts of ``compared``, ``regressions``, ``missing`` and ``new`` cells.
    """
    base, cur = latest_by_cell(baseline), latest_by_cell(current)
    findings: list[Finding] = []
    other_device: dict[tuple[str, str], int] = {}  # (baseline device, current device) -> cells
    speed_compared = busy = 0
    missing = [k for k in base if k not in cur]
    for key in missing:
        findings.append(Finding(_label(base[key]), "cell", base[key].get("status"), None, True,
                                "no current record of this baseline cell"))
    for key in (k for k in base if k in cur):
        b, c = base[key], cur[key]
        label = _label(b)
        if b.get("status") != c.get("status"):
            bad = c.get("status") not in ("ok", "unreachable") or b.get("status") == "ok"
            findings.append(Finding(label, "status", b.get("status"), c.get("status"), bad, c.get("error") or ""))
            continue
        if b.get("status") != "ok":
            continue
        for field in COST_FIELDS:
            x, y = _number(b.get(field)), _number(c.get(field))
            if x is None and y is None:
                continue
            if x is None or y is None or not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12):
                findings.append(Finding(label, field, b.get(field), c.get(field), True, "cost must not change"))
        for field in ACCURACY_FIELDS:
            x, y = _number(b.get(field)), _number(c.get(field))
            if x is None:
                continue
            if y is None:
                findings.append(Finding(label, field, x, c.get(field), True, "metric missing"))
            elif y < x - accuracy_tol:
                lo = _number(b.get(f"{field}_lo")) if intervals else None
                if lo is not None and y >= lo:
                    findings.append(Finding(label, field, x, y, False, f"dropped {100 * (x - y):.2f} points, within "
                                            f"the baseline's 95 % interval (from {100 * lo:.2f})"))
                else:
                    findings.append(Finding(label, field, x, y, True, f"dropped {100 * (x - y):.2f} points"))
            elif y > x + accuracy_tol:
                findings.append(Finding(label, field, x, y, False, f"rose {100 * (y - x):.2f} points"))
        x, y = _number(b.get("clips_per_s")), _number(c.get("clips_per_s"))
        if speed_band is not None and x is not None and y is not None:
            if not _same_speed(b, c):
                pair = (_speed_device(b), _speed_device(c))
                other_device[pair] = other_device.get(pair, 0) + 1
                continue
            if "busy" in (b.get("speed_flags") or ()) or "busy" in (c.get("speed_flags") or ()):
                busy += 1
                continue
            speed_compared += 1
            # With recorded intervals (95 % of the median), a regression is the whole current
            # interval below the band under the baseline's: noise in either is not a regression.
            x_lo, y_hi = _number(b.get("clips_per_s_lo")), _number(c.get("clips_per_s_hi"))
            slower = y_hi < (1 - speed_band) * x_lo if x_lo is not None and y_hi is not None else \
                y < (1 - speed_band) * x
            if slower:
                findings.append(Finding(label, "clips_per_s", x, y, True,
                                        f"{y / x:.2f}x the baseline (band {1 - speed_band:.2f}x)"))
    if busy:
        findings.append(Finding(f"{busy} cell(s)", "clips_per_s", "", "", False,
                                "speed not compared: timed while the machine was busy (speed_flags)"))
    for (was, now), n in sorted(other_device.items(), key=str):
        findings.append(Finding(f"{n} cell(s)", "clips_per_s", was, now, False,
                                "speed not compared: timed on another device or with other timing settings"))
    counts = {"compared": sum(1 for k in base if k in cur), "regressions": sum(f.regression for f in findings),
              "missing": len(missing), "new": sum(1 for k in cur if k not in base),
              "speed_compared": speed_compared, "speed_skipped": sum(other_device.values()) + busy}
    return findings, counts


def _speed_device(record: dict[str, Any]) -> str:
    env = record.get("env") if isinstance(record.get("env"), dict) else {}
    return str(record.get("speed_device") or env.get("device_name") or record.get("device") or "?")


def _same_speed(b: dict[str, Any], c: dict[str, Any]) -> bool:
    """Whether two records' throughputs are comparable: the same speed id (records written
    before speed ids existed: the same device name and device)."""
    if b.get("speed_id") is not None or c.get("speed_id") is not None:
        return b.get("speed_id") == c.get("speed_id")
    return _speed_device(b) == _speed_device(c) and b.get("device") == c.get("device")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "–" if value is None else str(value)


def markdown(findings: list[Finding], counts: dict[str, int]) -> str:
    """A Markdown summary line and a table of the findings (regressions first)."""
    head = (f"**{counts['regressions']} regression(s)** in {counts['compared']} compared cells "
            f"({counts['missing']} baseline cells missing, {counts['new']} new cells not in the baseline)")
    if counts.get("speed_compared") or counts.get("speed_skipped"):
        head += (f"; throughput compared in {counts.get('speed_compared', 0)} cells, not compared in "
                 f"{counts.get('speed_skipped', 0)} (another device or a busy machine)")
    if not findings:
        return head + "\n"
    lines = [head, "", "| cell | field | baseline | current | verdict |", "|---|---|---|---|---|"]
    for f in sorted(findings, key=lambda f: (not f.regression, f.cell, f.field)):
        verdict = ("**regression**" if f.regression else "changed") + (f": {f.note}" if f.note else "")
        lines.append(f"| {f.cell} | {f.field} | {_fmt(f.baseline)} | {_fmt(f.current)} | {verdict} |")
    return "\n".join(lines) + "\n"


def _only_records(path: Path) -> bool:
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return bool(lines) and all(damage(json.loads(line)) is None for line in lines)
    except (OSError, ValueError):
        return False


def write_baseline(baseline: str | Path, current: list[dict[str, Any]], *, results: str | Path | None = None,
                   prune: bool = False) -> tuple[Path, int, int]:
    """``tokbench check --update``: make ``baseline/baseline.jsonl`` the newest record of each
    cell of ``current``, plus the cells of the old baseline that ``current`` lacks (carried
    over: an update from a partial run never drops the rest), unless ``prune``.

    The new file is written whole under a temporary name and renamed into place; only then are
    the old baseline's other record files removed, and never a file inside ``results`` (when
    the current records live in the baseline folder, e.g. ``--baseline X --results X/runs``).

    Returns:
        (the baseline file, cells from ``current``, cells carried over from the old baseline).

    Raises:
        ResultsError: ``current`` holds no tokbench cell (nothing would be written).
        OutputError: the baseline folder cannot be written.
    """
    cells = latest_by_cell(current)
    if not cells:
        raise ResultsError("no tokbench record in the current results: refusing to replace the baseline with nothing")
    folder = output_folder(baseline, "--baseline")
    target = folder / "baseline.jsonl"
    inside = Path(results).resolve() if results is not None else None

    def in_results(path: Path) -> bool:
        resolved = path.resolve()
        return inside is not None and (resolved == inside or inside in resolved.parents)

    # Old record files: only files of nothing but tokbench records are replaced (a foreign
    # JSONL file that happens to sit in the folder is left alone).
    old = [p for p in run_files(folder) if not in_results(p) and _only_records(p)]
    previous = latest_by_cell([r for p in old for r in iter_records(p)])
    carried = {} if prune else {k: r for k, r in previous.items() if k not in cells}
    rows = {**carried, **cells}
    try:
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8") as f:
            for key in sorted(rows):
                f.write(json.dumps(rows[key], sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(f.name, target)  # the new baseline is complete before any old file goes
    except OSError as e:
        raise OutputError(f"--baseline {folder}: cannot write the baseline: {e.strerror or e}") from None
    for path in old:
        if path.resolve() != target.resolve():
            path.unlink()
    return target, len(cells), len(carried)
