"""Docker CLI output: aligned tables, `--format json` (one object per line) and Go-style templates."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

_FIELD_RE = re.compile(r"\{\{\s*(json\s+)?\.([A-Za-z0-9_.]*)\s*\}\}")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like Go's tabwriter with Docker's settings: cells at least 10 wide, 3 spaces of padding."""
    table = [list(headers), *[list(map(str, r)) for r in rows]]
    widths = [max(10, max(len(row[i]) for row in table) + 3) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def _lookup(obj: Any, dotted: str) -> Any:
    value = obj
    for part in filter(None, dotted.split(".")):
        value = value.get(part, "") if isinstance(value, dict) else ""
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def render_template(template: str, obj: dict[str, Any]) -> str:
    """A small subset of Go templates: ``{{.Field}}``, ``{{.A.B}}``, ``{{json .}}``, ``{{json .Field}}``."""

    def substitute(match: re.Match) -> str:
        value = _lookup(obj, match.group(2))
        return json.dumps(value, separators=(",", ":")) if match.group(1) else _as_text(value)

    text = template.replace("\\t", "\t").replace("\\n", "\n")
    return _FIELD_RE.sub(substitute, text)


def render(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str | None) -> str:
    """Render ``rows`` (dicts keyed like Docker's format fields) as Docker would for ``--format fmt``.

    ``columns`` is the default table: (header, field) pairs. ``fmt`` may be None/"table" (default table),
    "json" (one JSON object per line), "table <template>" (table whose columns come from the template)
    or a bare template (one line per row, no header).
    """
    if fmt in (None, "", "table"):
        headers = [header for header, _key in columns]
        return render_table(headers, [[_as_text(r.get(k, "")) for _header, k in columns] for r in rows])
    if fmt == "json":
        return "\n".join(json.dumps(r, separators=(",", ":")) for r in rows)
    if fmt.startswith("table "):
        template = fmt[len("table "):]
        header_by_field = {k: h for h, k in columns}
        headers = [
            header_by_field.get(m.group(2), m.group(2).upper()) for m in _FIELD_RE.finditer(template)
        ]
        cells = [
            [_as_text(_lookup(r, m.group(2))) for m in _FIELD_RE.finditer(template)] for r in rows
        ]
        return render_table(headers, cells)
    return "\n".join(render_template(fmt, r) for r in rows)
