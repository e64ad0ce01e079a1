"""Which records ``plot``, ``report`` and ``check`` compare, and a description of them.

Pure functions of files and DataFrames (no torch). The rules:

- **Your own runs by default.** ``tokbench run`` writes under ``<results>/runs/<machine>/``.
  Under a folder that is read recursively, record files in a ``runs/`` folder are your own
  runs; files directly in the folder that was named are the folder itself (``--results
  results/synthetic`` names that copy); files in any other sub-folder (``results/synthetic``,
  ``results/baseline`` under ``--results results``) are **curated copies**, left out and
  listed. Name a copy with ``--results`` (repeatable) to use it.
- **The newest record of each cell.** A cell (``cell_id``) measured more than once (a resumed or
  repeated run, a throughput re-measure) counts as its newest record, by ``created_utc`` and
  then reading order; :func:`newest_positions` is the one rule, for record lists
  (``tokbench check``) and DataFrames alike. How many older records were not used is said.
- **Accuracy over the same clips.** A dataset whose cells were evaluated on different clip
  counts (a 16-clip smoke run next to a 500-clip run) is refused with one line naming
  ``--clips``: their accuracies are not comparable.
- **Throughput on one device.** Rows timed on different devices or batch sizes are never put
  on one line: throughput figures are drawn per device (:func:`speed_label`), and
  ``--speed-device`` keeps the throughput of one device only (accuracy and FLOPs, which do
  not depend on the machine, are kept for every row).
- **Say what was combined.** :meth:`Selection.describe` lists runs, devices, revisions and clip
  counts; several runs, revisions or throughput devices are named.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokbench.errors import TokbenchError

__all__ = ["Selection", "record_files", "newest_positions", "newest_per_cell", "select_results", "select_records",
           "speed_device", "speed_label", "short_revision", "describe_frame", "clips_by_dataset", "speed_flag_counts"]

#: The columns that hold throughput and depend on the device (blanked by ``--speed-device``).
SPEED_COLUMNS = ("clips_per_s", "clips_per_s_lo", "clips_per_s_hi", "ms_per_clip", "median_ms", "iqr_ms",
                 "peak_mem_mb")
RUNS_SHOWN = 8  # runs listed one per line; more are summarised


def _own_run(root: Path, file: Path) -> bool | None:
    """True: a file of your own runs; None: a file of the folder that was named; False: a
    curated copy in a sub-folder."""
    rel = file.relative_to(root)
    if "runs" in root.resolve().parts or "runs" in rel.parts[:-1]:
        return True
    return None if len(rel.parts) == 1 else False


def record_files(path: str | Path) -> tuple[list[Path], dict[Path, list[Path]]]:
    """The record files under ``path`` to read, and the curated copies left out.

    Returns:
        (files to read, in order; {curated folder (the first sub-folder under ``path``): its files}).
        ``path`` a file: that file. A folder: its own runs and the files directly in it; the
        files of other sub-folders are curated copies (see the module docstring).
    """
    from tokbench.store import run_files

    path = Path(path)
    files = run_files(path)
    if path.is_file():
        return files, {}
    used, left_out = [], {}
    for file in files:
        kind = _own_run(path, file)
        if kind is False:
            left_out.setdefault(path / file.relative_to(path).parts[0], []).append(file)
        else:
            used.append(file)
    return used, left_out


def newest_positions(cells: Sequence[Any], stamps: Sequence[Any]) -> list[int]:
    """Positions of the newest record of each cell, in reading order.

    ``cells[i]`` is a record's ``cell_id`` (``None``/NaN: not a cell, always kept) and
    ``stamps[i]`` its ``created_utc``; the newest is the greatest stamp (a missing one is the
    oldest), the later in reading order among equals.
    """
    best: dict[Any, int] = {}
    keep = []
    for i, (cell, stamp) in enumerate(zip(cells, stamps)):
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            keep.append(i)
            continue
        j = best.get(cell)
        if j is None or _stamp(stamp) >= _stamp(stamps[j]):
            best[cell] = i
    return sorted(keep + list(best.values()))


def _stamp(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def newest_per_cell(df):
    """The newest record of each ``cell_id`` of a results DataFrame (see
    :func:`newest_positions`), with a fresh index (0..n-1), so that a folder holding repeated
    runs gives one row per cell."""
    if "cell_id" not in df.columns:
        return df.reset_index(drop=True)
    stamps = df["created_utc"].tolist() if "created_utc" in df.columns else [None] * len(df)
    return df.iloc[newest_positions(df["cell_id"].tolist(), stamps)].reset_index(drop=True)


def speed_device(df):
    """The device each row's throughput was measured on: ``speed_device``, else the
    record's ``env.device_name``, else its ``device`` (a Series of text; rows without
    throughput included)."""
    import pandas as pd

    out = pd.Series(None, index=df.index, dtype=object)
    for column in ("speed_device", "env.device_name", "device"):
        if column in df.columns:
            take = out.isna() & df[column].notna()
            out[take] = df.loc[take, column].astype(str)
    return out.fillna("unknown device")


def _integer_text(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def speed_label(df):
    """Which throughputs may share a line or a figure: the device, the batch size and, when
    set, ``compiled`` ("AMD EPYC, batch 1"); a Series of text."""
    import pandas as pd

    label = speed_device(df)
    batch = df["batch_size"] if "batch_size" in df.columns else pd.Series(None, index=df.index, dtype=object)
    label = label + batch.map(lambda b: "" if b is None or (isinstance(b, float) and math.isnan(b))
                              else f", batch {_integer_text(b)}")
    if "compiled" in df.columns:
        label = label + df["compiled"].map(lambda c: ", compiled" if c is True else "")
    return label


def short_revision(revision: Any) -> str:
    """``d3122fff...`` -> ``d3122ff``; a ``+dirty`` suffix is kept."""
    if revision is None or (isinstance(revision, float) and math.isnan(revision)):
        return "unknown revision"
    text = str(revision)
    head, plus, rest = text.partition("+")
    return head[:7] + (plus + rest if plus else "")


def clips_by_dataset(df) -> dict[str, list[int]]:
    """{dataset: sorted clip counts of its accuracy cells} (rows with status ok)."""
    if "clips" not in df.columns or "dataset" not in df.columns:
        return {}
    rows = df[df["dataset"].notna() & df["clips"].notna()]
    if "status" in rows.columns:
        rows = rows[rows["status"] == "ok"]
    return {str(d): sorted(int(c) for c in g["clips"].unique()) for d, g in rows.groupby("dataset", sort=True)}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _values(df, column: str) -> list[str]:
    if column not in df.columns:
        return []
    return sorted({str(v) for v in df[column].dropna()})


def describe_frame(df) -> list[str]:
    """Lines about the records of ``df``: one per run (records, date, devices, revision), the
    clip counts per dataset, and notes naming several runs, revisions or throughput devices."""
    lines = []
    runs = df.groupby("run_id", sort=False) if "run_id" in df.columns and df["run_id"].notna().any() else []
    order = []
    for run, rows in runs:
        first = min(_values(rows, "created_utc"), default="")
        order.append((first, str(run), rows))
    order.sort(key=lambda t: (t[0], t[1]))
    for first, run, rows in order[:RUNS_SHOWN]:
        devices = ", ".join(_values(rows, "env.device_name")) or "unknown device"
        revisions = ", ".join(short_revision(r) for r in _values(rows, "env.git_revision")) or "unknown revision"
        when = first[:16].replace("T", " ") + " UTC" if first else "no date"
        lines.append(f"run {run} ({when}): {_plural(len(rows), 'record')} on {devices}, revision {revisions}")
    if len(order) > RUNS_SHOWN:
        lines.append(f"... and {len(order) - RUNS_SHOWN} more runs ({sum(len(t[2]) for t in order[RUNS_SHOWN:])} records)")
    if "run_id" in df.columns and df["run_id"].isna().any():
        lines.append(f"{_plural(int(df['run_id'].isna().sum()), 'record')} without a run id")
    clips = clips_by_dataset(df)
    if clips:
        counts = {tuple(v) for v in clips.values()}
        if len(counts) == 1 and len(next(iter(counts))) == 1:
            lines.append(f"clips per cell: {next(iter(counts))[0]} on every dataset ({', '.join(clips)})")
        else:
            lines.append("clips per cell: " + ", ".join(f"{d} {' and '.join(map(str, c))}" for d, c in clips.items()))
    notes = []
    if len(order) > 1:
        notes.append(f"records of {len(order)} runs are combined (the newest record of each cell)")
    revisions = _values(df, "env.git_revision")
    if len(revisions) > 1:
        notes.append(f"records of {len(revisions)} revisions are combined ({', '.join(map(short_revision, revisions))})")
    if "clips_per_s" in df.columns:
        timed = df[df["clips_per_s"].notna()]
        labels = sorted(set(speed_label(timed))) if not timed.empty else []
        if len(labels) > 1:
            notes.append(f"throughput was measured on {len(labels)} devices or batch sizes ({'; '.join(labels)}): "
                         "throughput is drawn per device; --speed-device picks one")
    flagged = speed_flag_counts(df)
    if flagged:
        notes.append("throughput of " + ", ".join(f"{n} cells flagged {flag}" for flag, n in flagged.items())
                     + " (speed_flags: timed on a busy machine or with a wide spread; not comparable)")
    return lines + [f"note: {n}" for n in notes]


def speed_flag_counts(df) -> dict[str, int]:
    """{flag: cells} of the ``speed_flags`` the records carry (``busy``, ``noisy``)."""
    if "speed_flags" not in df.columns:
        return {}
    counts: dict[str, int] = {}
    for flags in df["speed_flags"]:
        if isinstance(flags, (list, tuple)):
            for flag in flags:
                counts[str(flag)] = counts.get(str(flag), 0) + 1
    return dict(sorted(counts.items()))


@dataclass(frozen=True)
class Selection:
    """The records a command compares, and where they came from.

    Attributes:
        frame: the newest record of each cell, after the filters (index 0..n-1).
        sources: the ``--results`` paths read.
        read: records read.
        superseded: older records of cells measured more than once (not used).
        left_out: curated copies left out: {folder: records in it}.
        filtered: records the filters left out.
    """

    frame: Any
    sources: tuple[str, ...]
    read: int
    superseded: int
    left_out: dict[str, int] = field(default_factory=dict)
    filtered: int = 0

    def describe(self) -> list[str]:
        """What was used, in lines for a terminal (the first names the sources and counts)."""
        df = self.frame
        head = (f"used {_plural(len(df), 'record')} of {', '.join(self.sources)} "
                f"({self.read} read")
        if self.superseded:
            head += f"; {self.superseded} older record(s) of cells measured again not used"
        if self.filtered:
            head += f"; {self.filtered} left out by the filters"
        head += ")"
        lines = [head] + [f"  {line}" for line in describe_frame(df)]
        if self.left_out:
            copies = ", ".join(f"{folder} ({n} records)" for folder, n in self.left_out.items())
            lines.append(f"  left out curated copies: {copies}; name one with --results to use it")
        return lines


def _load(paths: Iterable[str | Path]):
    """(records DataFrame in reading order, sources, curated copies left out)."""
    import pandas as pd

    from tokbench.store import load_results

    files, left_out, sources = [], {}, []
    for path in paths:
        path = Path(path)
        if not path.exists():
            hint = (": run 'tokbench run' first (it writes there), or name a folder with --results, e.g. "
                    "results/synthetic (the committed default run)") if path.name == "runs" else ""
            raise TokbenchError(f"results not found: {path}{hint}")
        used, copies = record_files(path)
        sources.append(str(path))
        files += [f for f in used if f not in files]
        for folder, copy_files in copies.items():
            left_out[str(folder)] = copy_files
    if not files and left_out:
        raise TokbenchError(f"no records of your own runs under {', '.join(sources)}; it holds curated copies: "
                            f"{', '.join(left_out)}: name one with --results (repeatable) to use it")
    df = load_results(files) if files else pd.DataFrame()
    counts = {folder: sum(1 for f in fs for line in f.read_text(encoding="utf-8", errors="replace").splitlines()
                          if line.strip()) for folder, fs in left_out.items()}
    return df, tuple(sources), counts


def _match_runs(df, runs: Sequence[str]) -> list[str]:
    have = sorted({str(r) for r in df["run_id"].dropna()}) if "run_id" in df.columns else []
    if not have:
        raise TokbenchError("--run: the records have no run ids")
    picked = []
    for want in runs:
        if want == "latest":
            stamps = df.groupby("run_id")["created_utc"].max() if "created_utc" in df.columns else None
            picked.append(str(stamps.idxmax()) if stamps is not None and stamps.notna().any() else have[-1])
            continue
        hits = [r for r in have if r.startswith(want)]
        if len(hits) != 1:
            why = "matches no run" if not hits else f"matches {len(hits)} runs"
            raise TokbenchError(f"--run {want!r} {why}; the results have: {', '.join(have[-RUNS_SHOWN:])}"
                                + (f" (and {len(have) - RUNS_SHOWN} older)" if len(have) > RUNS_SHOWN else "")
                                + ", or 'latest'")
        picked.append(hits[0])
    return picked


def _check_clips(df) -> None:
    for dataset, counts in clips_by_dataset(df).items():
        if len(counts) > 1:
            rows = df[(df["dataset"] == dataset) & df["clips"].notna()]
            per = rows.groupby("clips").size()
            parts = " and ".join(f"{int(c)} clips ({n} cells)" for c, n in per.items())
            options = " or ".join(f"--clips {c}" for c in counts)
            raise TokbenchError(f"{dataset} has cells evaluated on {parts}: accuracies over different clips are not "
                                f"comparable; pick one with {options} (or --run, --datasets)")


def _keep_speed_device(df, device: str):
    if "clips_per_s" not in df.columns:
        raise TokbenchError("--speed-device: the records have no throughput")
    timed = df["clips_per_s"].notna()
    devices = speed_device(df)
    have = sorted(set(devices[timed]))
    if device not in have:
        raise TokbenchError(f"--speed-device {device!r}: no throughput measured on it; the records have: "
                            f"{', '.join(map(repr, have)) or 'none'}")
    df = df.copy()
    other = timed & (devices != device)
    for column in SPEED_COLUMNS:
        if column in df.columns:
            df.loc[other, column] = float("nan")
    return df


def select_results(paths: Sequence[str | Path], *, runs: Sequence[str] | None = None,
                   clips: Sequence[int] | None = None, speed_device: str | None = None,
                   **filters: Sequence[str] | None) -> Selection:
    """Read results for ``plot``/``report``: own runs (curated copies left out), the newest
    record per cell, then the filters; refuses a dataset whose cells have different clip counts.

    Args:
        paths: results folders or files (``--results``, repeatable).
        runs: run ids (unique prefixes) or ``latest`` to keep (before the newest record per
            cell is taken).
        clips: clip counts to keep (accuracy cells; a row without a count, such as an
            unreachable cell, stays when its run evaluated at a kept count or at none).
        speed_device: keep throughput measured on this device only (other rows keep their
            accuracy and FLOPs).
        filters: column -> values (``dataset``, ``method``, ``protocol``, ``backbone``), as
            :func:`tokbench.report.pareto.filter_results`.

    Raises:
        TokbenchError: a path that does not exist, only curated copies under a folder, a
            filter value no row has, or a dataset mixing clip counts.
    """
    import pandas as pd

    from tokbench.report.pareto import filter_results

    df, sources, left_out = _load(paths)
    read = len(df)
    if runs:
        df = df[df["run_id"].astype(str).isin(_match_runs(df, runs))]
    newest = newest_per_cell(df)
    superseded = len(df) - len(newest)
    before = len(newest)
    if clips:
        have = sorted({int(c) for c in newest["clips"].dropna()}) if "clips" in newest.columns else []
        unknown = [c for c in clips if c not in have]
        if unknown:
            raise TokbenchError(f"--clips {unknown[0]}: no cells evaluated on {unknown[0]} clips; the results have: "
                                f"{', '.join(map(str, have)) or 'none'}")
        # A cell without a clip count (unreachable, failed, cost-only) stays when its run
        # evaluated at a kept count, or evaluated nothing: it belongs to the kept cells.
        kept = newest["clips"].isin(list(clips))
        runs_kept = set(newest.loc[kept, "run_id"].dropna()) if "run_id" in newest.columns else set()
        runs_counted = set(newest.loc[newest["clips"].notna(), "run_id"].dropna()) if "run_id" in newest.columns else set()
        run = newest["run_id"] if "run_id" in newest.columns else pd.Series(None, index=newest.index, dtype=object)
        belongs = newest["clips"].isna() & (run.isin(runs_kept) | ~run.isin(runs_counted))
        newest = newest[kept | belongs]
    newest = filter_results(newest, **filters).reset_index(drop=True)
    if speed_device is not None:
        newest = _keep_speed_device(newest, speed_device)
    _check_clips(newest)
    return Selection(frame=newest, sources=sources, read=read, superseded=superseded, left_out=left_out,
                     filtered=before - len(newest))


def select_records(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records for ``tokbench check`` (a list, in reading order; curated copies under a folder
    left out) and the lines describing them.

    Raises:
        TokbenchError: ``path`` has only curated copies.
    """
    import pandas as pd

    from tokbench.store import iter_records

    path = Path(path)
    files, left_out = record_files(path)
    if not files and left_out:
        raise TokbenchError(f"no records of your own runs under {path}; it holds curated copies: "
                            f"{', '.join(map(str, left_out))}: name one to use it")
    records = [r for f in files for r in iter_records(f, require_records=True)]
    if not records:
        return [], []
    df = pd.json_normalize(records, max_level=1)
    cells = len(newest_positions(df["cell_id"].tolist(), df.get("created_utc", pd.Series([None] * len(df))).tolist()))
    lines = [f"{path}: {_plural(len(records), 'record')} of {_plural(cells, 'cell')}"
             + (f" ({len(records) - cells} older record(s) of cells measured again not used)" if cells < len(records)
                else "")]
    lines += [f"  {line}" for line in describe_frame(newest_per_cell(df))]
    if left_out:
        lines.append(f"  left out curated copies: {', '.join(map(str, left_out))}")
    return records, lines
