r"""A self-contained HTML page from the report's Markdown: figures embedded as data URIs,
so the one file can be mailed or attached to a review. No torch, no extra dependency.

Only the Markdown the report writes is understood: ``#`` headings (with GitHub's anchors,
:func:`slug`), paragraphs, ``- `` lists, pipe tables (header, separator, rows; ``\|`` in a
cell), images ``![alt](file)`` on their own line, and inline ``code``, **bold**, *italic*
and links ``[text](href)``.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

__all__ = ["markdown_to_html", "write_html", "slug"]

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1180px; margin: 1.5em auto;
       padding: 0 1.2em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.15em; margin-top: 1.8em; }
h3 { margin-top: 1.5em; }
.table { overflow-x: auto; margin: 0.6em 0 1em; }
table { border-collapse: collapse; font-size: 0.82em; }
th, td { border: 1px solid #d4d4d4; padding: 0.15em 0.5em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f2f2f2; }
tbody tr:nth-child(even) { background: #fafafa; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
img[alt^="accuracy_vs_gflops_"], img[alt^="throughput_vs_gflops"] { max-width: 560px; }
code { background: #f4f4f4; padding: 0 0.2em; font-size: 0.92em; }
a { color: #0b5cad; text-decoration: none; }
a:hover { text-decoration: underline; }
"""


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading (lower case, punctuation dropped, spaces to
    hyphens); the page uses the same, so the report's links work on GitHub and in the page."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _inline(text: str) -> str:
    """Escape, then ``code``, links, **bold**, *italic* (code spans are not formatted further)."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        part = html.escape(part, quote=False)
        part = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', part)
        part = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", part)
        out.append(part)
    return "".join(out)


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def _image(alt: str, src: str, base: Path) -> str:
    path = base / src
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return f'<p><img alt="{html.escape(alt)}" src="{html.escape(src)}"></p>'  # left as a link
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<p><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}"></p>'


def markdown_to_html(text: str, base: str | Path = ".") -> str:
    """The body HTML of report Markdown ``text``; images are read from ``base``."""
    base = Path(base)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            level = len(m.group(1))
            out.append(f'<h{level} id="{slug(m.group(2))}">{_inline(m.group(2))}</h{level}>')
            i += 1
        elif m := _IMAGE.match(stripped):
            out.append(_image(m.group("alt"), m.group("src"), base))
            i += 1
        elif stripped.startswith("|"):
            block = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                block.append(lines[i])
                i += 1
            rows = [_cells(b) for b in block]
            has_header = len(rows) > 1 and all(re.fullmatch(r":?-{1,}:?", c) for c in rows[1])
            table = ['<div class="table"><table>']
            body = rows
            if has_header:
                table.append("<thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in rows[0]) + "</tr></thead>")
                body = rows[2:]
            table.append("<tbody>")
            table += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
            table.append("</tbody></table></div>")
            out.append("\n".join(table))
        elif stripped.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append("<ul>\n" + "\n".join(items) + "\n</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"^(#|\||- |!\[)", lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def write_html(markdown_path: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML page of a Markdown report next to it (``report.html``) with its images
    embedded; returns the path."""
    markdown_path = Path(markdown_path)
    text = markdown_path.read_text()
    title = text.splitlines()[0].lstrip("# ").strip() if text else "tokbench report"
    body = markdown_to_html(text, markdown_path.parent)
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
    out = Path(out) if out is not None else markdown_path.with_suffix(".html")
    out.write_text(page)
    return out
