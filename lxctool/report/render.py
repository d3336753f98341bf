"""The one module that imports tabulate: rows of dicts -> table, JSON or CSV on stdout."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Iterable, Sequence

FORMATS = ("table", "json", "csv")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value) or "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str = "table",
           *, headers: Sequence[str] | None = None, data: Any = None) -> str:
    """Render rows; json emits `data` when given (richer than the table), else the rows."""
    rows = list(rows)
    if fmt == "json":
        return json.dumps(rows if data is None else data, indent=2, default=str)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else
                             (";".join(map(str, row[c])) if isinstance(row.get(c), (list, tuple)) else row[c])
                             for c in columns])
        return buf.getvalue().rstrip("\n")
    from tabulate import tabulate  # lazy: keeps `lxctool --help` fast

    return tabulate([[_cell(r.get(c)) for c in columns] for r in rows],
                    headers=list(headers or columns), tablefmt="simple", disable_numparse=True)
