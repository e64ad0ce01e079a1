"""Plain-text tables for the terminal (``tokbench ls``, the run summary, ``flops``)."""

from __future__ import annotations

import shutil
import textwrap

__all__ = ["text_table", "cards"]


def text_table(rows: list[dict]) -> str:
    """Rows of equal keys as left-aligned columns under a header and a rule; ``(none)`` for no rows."""
    if not rows:
        return "(none)"
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cards(rows: list[dict], *, width: int | None = None) -> str:
    """One block per row, ``key: value`` lines wrapped to the terminal width (long texts such
    as a dataset's notes stay readable; a table of them would be one 1,300-character line)."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    blocks = []
    for row in rows:
        keys = [k for k in row if k != "name"]
        pad = max((len(k) for k in keys), default=0) + 2
        lines = [str(row.get("name", ""))]
        for key in keys:
            text = str(row[key]) if row[key] not in (None, "") else "–"
            wrapped = textwrap.wrap(text, max(20, width - pad - 2)) or [""]
            lines.append(f"  {key + ':':<{pad}}{wrapped[0]}")
            lines += [" " * (pad + 2) + more for more in wrapped[1:]]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
