"""Text for a terminal: rows as a table (``tokbench ls``, the run summary, ``flops``) or as
cards wrapped to a width (``tokbench ls ... -v``). No torch."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence

__all__ = ["cards", "terminal_width", "text_table"]


def text_table(rows: list[dict]) -> str:
    """Rows of equal keys as left-aligned columns under a header and a rule; ``(none)`` for no rows."""
    if not rows:
        return "(none)"
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def terminal_width(default: int = 100) -> int:
    """The terminal's width in characters (``COLUMNS`` first; ``default`` when not a terminal),
    at least 40."""
    return max(40, shutil.get_terminal_size((default, 24)).columns)


def cards(rows: Sequence[dict], *, width: int | None = None, title: str = "name") -> str:
    """One card per row: its ``title`` field on a line, then ``key: value`` lines wrapped to
    ``width`` (continuations indented under the value). Empty values are left out."""
    from tokbench.report.tables import number_text

    width = width or terminal_width()
    blocks = []
    for row in rows:
        lines = [str(row.get(title, ""))]
        keys = [k for k in row if k != title and number_text(row[k]) != ""]
        pad = max((len(k) for k in keys), default=0) + 4
        for key in keys:
            lines += textwrap.wrap(number_text(row[key]), width=width, initial_indent=f"  {key}:".ljust(pad),
                                   subsequent_indent=" " * pad, break_on_hyphens=False) or [f"  {key}:"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
