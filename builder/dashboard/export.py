"""CSV export of anything the dashboard shows: a chart's data or a call list.

`to_csv(rows)` takes a pandas DataFrame, or a sequence of pydantic models,
dataclasses or mappings (one per row), and returns UTF-8 CSV bytes ready for
`st.download_button`:

- the header is the columns in first-seen order (a DataFrame's own order);
  nested mappings are flattened to dotted names (`counts.completed`), lists
  and other nested values are written as JSON;
- times are ISO 8601, missing values are empty cells;
- text cells that a spreadsheet would run as a formula (starting with `=`,
  `+`, `-`, `@`, tab or carriage return) get a leading `'`, since exported
  transcripts hold what callers said. Numbers are left as numbers.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeAlias

import pandas as pd
from pydantic import BaseModel

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")

Rows: TypeAlias = pd.DataFrame | Sequence[Any]


def _row_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, BaseModel):
        return row.model_dump(mode="python")
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if isinstance(row, Mapping):
        return dict(row)
    raise TypeError(f"cannot export a {type(row).__name__} as a CSV row (expected a model/dict)")


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _cell(value: Any, escape_formulas: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return json.dumps(list(value), default=str)
    if isinstance(value, str) and escape_formulas and value.startswith(FORMULA_START):
        return "'" + value
    return value


def frame(rows: Rows) -> pd.DataFrame:
    """The rows as a flat DataFrame (see module docstring for the rules)."""
    if isinstance(rows, pd.DataFrame):
        return rows
    flat = [_flatten(_row_dict(r)) for r in rows]
    columns: dict[str, None] = {}
    for r in flat:
        columns.update(dict.fromkeys(r))
    return pd.DataFrame(flat, columns=list(columns))


def to_csv(rows: Rows, *, escape_formulas: bool = True) -> bytes:
    """UTF-8 CSV (header row, then one line per row) of a DataFrame or of a
    sequence of models/dataclasses/mappings. No rows -> the header only (an
    empty DataFrame's columns) or empty bytes."""
    table = frame(rows)
    if table.empty and not len(table.columns):
        return b""
    cells = table.astype(object).map(lambda v: _cell(None if _missing(v) else v, escape_formulas))
    return cells.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def file_name(*parts: str | None, ext: str = "csv") -> str:
    """A safe download file name from parts (empty parts skipped), e.g.
    `file_name("calls-by-day", "front-desk")` -> `calls-by-day_front-desk.csv`."""
    words = [_UNSAFE_NAME.sub("-", p).strip("-") for p in parts if p]
    stem = "_".join(w for w in words if w) or "export"
    return f"{stem[:120]}.{ext}"
