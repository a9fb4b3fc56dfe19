"""Query inputs checked before any SQL runs, and the Python percentile rule
used on SQLite (it must agree with PostgreSQL's percentile_cont)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from runtime.db import analytics as an
from runtime.db.queries import CallFilter, search_words


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_bad_filters_are_rejected_with_the_reason() -> None:
    with pytest.raises(ValidationError, match="outcome"):
        CallFilter(outcome="exploded")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="after until"):
        CallFilter(since=utc("2026-11-22T00:00:00"), until=utc("2026-11-21T00:00:00"))
    with pytest.raises(ValidationError, match="extra"):
        CallFilter(agnet="dental")  # type: ignore[call-arg]
    assert CallFilter(since=datetime(2026, 11, 23)).since == utc("2026-11-23T00:00:00")


def test_search_words_ignore_punctuation_and_are_bounded() -> None:
    assert search_words("  I'd like -a_b (cleaning)!") == ["I", "d", "like", "a_b", "cleaning"]
    assert search_words(None) == search_words("?!") == []
    assert len(search_words("w " * 50)) == 12


def test_python_percentiles_match_percentile_cont() -> None:
    assert an.percentiles([1, 2, 3, 4]) == [2.5, pytest.approx(3.7), pytest.approx(3.97)]
    assert an.percentiles([5.0]) == [5.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        an.percentiles([])
