"""A self-contained HTML report from an experiment's results and figures.

One file, viewable offline: figures are embedded as base64 PNG, the style is
inline, nothing is fetched. An experiment describes its report as a list of
``Section`` objects (text, tables, figure paths); ``render`` turns them into
HTML. Reports never compute: every number in a table comes from the results.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
.table { overflow-x: auto; } table { border-collapse: collapse; margin: 1em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #555; }
.meta { font-size: .85em; color: #555; } pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
"""


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG written by a plotting function, with its caption."""

    path: Path
    caption: str


@dataclasses.dataclass(frozen=True)
class Table:
    """Rows of equal keys; numbers are formatted with ``fmt`` (``.3g`` by default)."""

    rows: Sequence[Mapping[str, Any]]
    caption: str = ""
    fmt: str = ".3g"


@dataclasses.dataclass(frozen=True)
class Section:
    """A heading, paragraphs of plain text, then tables and figures."""

    title: str
    text: Sequence[str] = ()
    tables: Sequence[Table] = ()
    figures: Sequence[Figure] = ()


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return html.escape(str(value))
    if isinstance(value, int):
        return str(value)
    return format(value, fmt)


def _table(table: Table) -> str:
    if not table.rows:
        return ""
    keys = list(table.rows[0])
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(k, ''), table.fmt)}</td>" for k in keys) + "</tr>"
        for row in table.rows
    )
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f'<div class="table"><table>{caption}<tr>{head}</tr>{body}</table></div>'


def _figure(figure: Figure) -> str:
    data = base64.b64encode(Path(figure.path).read_bytes()).decode("ascii")
    caption = html.escape(figure.caption)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def render(title: str, sections: Sequence[Section], metadata: Mapping[str, Any]) -> str:
    """The report as one HTML string; ``metadata`` (versions, seed, settings) is shown at the top."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append(f'<pre class="meta">{html.escape(json.dumps(metadata, indent=1, default=str))}</pre>')
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        parts.extend(f"<p>{html.escape(t)}</p>" for t in s.text)
        parts.extend(_table(t) for t in s.tables)
        parts.extend(_figure(f) for f in s.figures)
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def write(path: Path, title: str, sections: Sequence[Section], metadata: Mapping[str, Any]) -> Path:
    """Write ``render(...)`` to ``path`` (UTF-8) and return the path."""
    path = Path(path)
    path.write_text(render(title, sections, metadata), encoding="utf-8")
    return path
