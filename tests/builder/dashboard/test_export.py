"""CSV export: DataFrames and lists of models/dicts/dataclasses, nested values
flattened, formulas neutralised, round-trips through a CSV reader."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import pytest
from pydantic import BaseModel

from builder.dashboard.export import file_name, frame, to_csv


class Row(BaseModel):
    id: str
    started_at: datetime
    score: float | None
    counts: dict[str, int]
    tags: list[str]


@dataclass
class Point:
    x: int
    label: str


def read(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_models_become_flat_rows() -> None:
    rows = [
        Row(
            id="c1",
            started_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
            score=0.5,
            counts={"completed": 2, "failed": 0},
            tags=["a", "b"],
        ),
        Row(
            id="c2",
            started_at=datetime(2026, 11, 3, tzinfo=UTC),
            score=None,
            counts={"completed": 1, "failed": 1},
            tags=[],
        ),
    ]
    out = read(to_csv(rows))
    assert list(out[0]) == [
        "id",
        "started_at",
        "score",
        "counts.completed",
        "counts.failed",
        "tags",
    ]
    assert out[0] == {
        "id": "c1",
        "started_at": "2026-11-02T09:30:00+00:00",
        "score": "0.5",
        "counts.completed": "2",
        "counts.failed": "0",
        "tags": '["a", "b"]',
    }
    assert out[1]["score"] == "" and out[1]["tags"] == "[]"


def test_dataframes_dicts_and_dataclasses() -> None:
    df = pd.DataFrame({"day": ["2026-11-01"], "calls": [3]})
    assert to_csv(df) == b"day,calls\n2026-11-01,3\n"
    assert to_csv([{"a": 1}, {"a": 2, "b": "x"}]) == b"a,b\n1,\n2,x\n"
    assert to_csv([Point(1, "one")]) == b"x,label\n1,one\n"
    assert list(frame([Point(1, "one")]).columns) == ["x", "label"]


def test_spreadsheet_formulas_in_text_are_neutralised() -> None:
    said = ['=HYPERLINK("http://evil")', "+1 555 0100", "-rm", "@sum", "fine"]
    out = read(to_csv([{"caller_said": s, "score": -0.5} for s in said]))
    assert [r["caller_said"] for r in out] == [
        '\'=HYPERLINK("http://evil")',
        "'+1 555 0100",
        "'-rm",
        "'@sum",
        "fine",
    ]
    assert {r["score"] for r in out} == {"-0.5"}  # numbers stay numbers
    raw = read(to_csv([{"t": "=1+1"}], escape_formulas=False))
    assert raw[0]["t"] == "=1+1"


def test_no_rows() -> None:
    assert to_csv([]) == b""
    assert to_csv(pd.DataFrame(columns=["day", "calls"])) == b"day,calls\n"


def test_rows_that_are_not_records_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot export a int"):
        to_csv([1, 2])


def test_file_names_are_safe() -> None:
    assert file_name("calls-by-day", "front-desk", None) == "calls-by-day_front-desk.csv"
    assert file_name("a/b c", "../x") == "a-b-c_..-x.csv"
    assert file_name(None, "") == "export.csv"
