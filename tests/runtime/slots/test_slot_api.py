"""The `extract` entry point: text slots and errors for calls that cannot be answered."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import SLOT_KINDS, extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))


def test_text_is_stripped_and_collapsed() -> None:
    result = extract("text", "  John   Smith \n", now=NOW)
    assert result is not None
    assert result.value == "John Smith"
    assert result.spoken == "John Smith"


@pytest.mark.parametrize("said", ["", "   ", "um", "uh, hmm...", "?!"])
def test_text_of_only_filler_gives_none(said: str) -> None:
    assert extract("text", said, now=NOW) is None


def test_choice_without_choices_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="choice slot needs"):
        extract("choice", "the first one", now=NOW)
    with pytest.raises(ValueError, match="choice slot needs"):
        extract("choice", "the first one", now=NOW, choices=[])


def test_unknown_region_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        extract("phone", "2125550142", now=NOW, region="XX")


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown slot kind 'colour'"):
        extract("colour", "red", now=NOW)  # type: ignore[arg-type]


def test_every_schema_kind_is_handled() -> None:
    assert set(SLOT_KINDS) == {
        "text", "number", "yes_no", "date", "time", "phone", "email", "choice",
    }  # fmt: skip
    for kind in SLOT_KINDS:
        extract(kind, "hello", now=NOW, choices=["a", "b"])  # type: ignore[arg-type]


def test_text_slot_drops_punctuation_added_by_speech_to_text() -> None:
    from datetime import datetime

    result = extract("text", "Maria Garcia.", now=datetime(2026, 11, 25))
    assert result is not None and result.value == "Maria Garcia"
