"""Yes/no slots: spoken answers -> bool."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))

YES = [
    "yes", "Yes!", "yeah", "yeah sure", "yep", "yup", "sure", "correct", "that's right",
    "that is correct", "absolutely", "please do", "please", "of course", "go ahead",
    "sounds good", "uh huh", "mm hmm", "I think so", "why not", "no problem", "no worries",
    "it's not a problem", "sure, no problem", "yes I do", "I do", "it is", "I'd like that",
    "no wait yes", "definitely",
]  # fmt: skip
NO = [
    "no", "NO.", "nope", "nah", "not really", "don't", "please don't", "I don't think so",
    "absolutely not", "of course not", "no thanks", "no I don't", "it isn't",
    "that's not right", "not quite right", "wrong", "uh-uh", "i guess not", "yeah no",
    "never",
]  # fmt: skip
UNCLEAR = [
    "maybe", "i'm not sure", "not sure", "I don't know", "yes and no", "um", "", "hello",
    "i want to book", "perhaps tomorrow",
]  # fmt: skip


@pytest.mark.parametrize("said", YES)
def test_yes(said: str) -> None:
    result = extract("yes_no", said, now=NOW)
    assert result is not None, said
    assert result.value is True
    assert result.spoken == "yes"


@pytest.mark.parametrize("said", NO)
def test_no(said: str) -> None:
    result = extract("yes_no", said, now=NOW)
    assert result is not None, said
    assert result.value is False
    assert result.spoken == "no"


@pytest.mark.parametrize("said", UNCLEAR)
def test_unclear_gives_none(said: str) -> None:
    assert extract("yes_no", said, now=NOW) is None
