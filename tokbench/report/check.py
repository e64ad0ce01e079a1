"""``tokbench check``: compare results with a committed baseline, cell by cell.

Pure functions of record lists (no torch), so a user's CI can run them on any machine:

- a cell is identified by its ``cell_id`` (the hash of everything that determines its
  results: geometry, weights, method and options, P, data, protocol); several records of
  one cell (re-runs) count as the newest;
- **cost** (``gflops``, ``params_m``, ``tokens_kept``) must match exactly (relative 1e-9:
  fvcore counts are deterministic);
- **accuracy** (every metric the baseline recorded) may not fall by more than
  ``accuracy_tol`` (absolute); a rise is reported, not failed;
- **throughput** (``clips_per_s``) is compared only when both records ran on the same
  device, and fails only below ``(1 - speed_band)`` x the baseline;
- a **status** that leaves ``ok``/``unreachable``, or a baseline cell with no current
  record, is a regression; current cells the baseline lacks are counted as new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "ACCURACY_FIELDS", "COST_FIELDS", "compare", "latest_by_cell", "markdown"]

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
    """The newest record of each ``cell_id`` (by ``created_utc``, then file order)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record.get("cell_id")
        if key is None:
            continue
        if key not in out or str(record.get("created_utc", "")) >= str(out[key].get("created_utc", "")):
            out[key] = record
    return out


def _label(record: dict[str, Any]) -> str:
    dataset = record.get("dataset") or record.get("backbone") or "?"
    return f"{dataset} / {record.get('method_id', record.get('method'))} / P={record.get('p_ratio')}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def compare(baseline: list[dict[str, Any]], current: list[dict[str, Any]], *, accuracy_tol: float = 1e-9,
            speed_band: float | None = 0.5) -> tuple[list[Finding], dict[str, int]]:
    """Differences between ``baseline`` and ``current`` records (see the module docstring).

    Args:
        accuracy_tol: largest allowed drop of an accuracy metric (absolute, in [0, 1] units).
        speed_band: allowed relative throughput drop on the same device; ``None`` skips speed.

    Returns:
        (findings, counts) with counts of ``compared``, ``regressions``, ``missing`` and ``new`` cells.
    """
    base, cur = latest_by_cell(baseline), latest_by_cell(current)
    findings: list[Finding] = []
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
                findings.append(Finding(label, field, x, y, True, f"dropped {100 * (x - y):.2f} points"))
            elif y > x + accuracy_tol:
                findings.append(Finding(label, field, x, y, False, f"rose {100 * (y - x):.2f} points"))
        x, y = _number(b.get("clips_per_s")), _number(c.get("clips_per_s"))
        if speed_band is not None and x is not None and y is not None:
            same = b.get("env", {}).get("device_name") == c.get("env", {}).get("device_name") and \
                b.get("device") == c.get("device")
            if same and y < (1 - speed_band) * x:
                findings.append(Finding(label, "clips_per_s", x, y, True,
                                        f"{y / x:.2f}x the baseline (band {1 - speed_band:.2f}x)"))
    counts = {"compared": sum(1 for k in base if k in cur), "regressions": sum(f.regression for f in findings),
              "missing": len(missing), "new": sum(1 for k in cur if k not in base)}
    return findings, counts


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "–" if value is None else str(value)


def markdown(findings: list[Finding], counts: dict[str, int]) -> str:
    """A Markdown summary line and a table of the findings (regressions first)."""
    head = (f"**{counts['regressions']} regression(s)** in {counts['compared']} compared cells "
            f"({counts['missing']} baseline cells missing, {counts['new']} new cells not in the baseline)")
    if not findings:
        return head + "\n"
    lines = [head, "", "| cell | field | baseline | current | verdict |", "|---|---|---|---|---|"]
    for f in sorted(findings, key=lambda f: (not f.regression, f.cell, f.field)):
        verdict = ("**regression**" if f.regression else "changed") + (f": {f.note}" if f.note else "")
        lines.append(f"| {f.cell} | {f.field} | {_fmt(f.baseline)} | {_fmt(f.current)} | {verdict} |")
    return "\n".join(lines) + "\n"
