"""Choice slots: pick one entry of the node's choices, or None when unclear."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
SERVICES = ["cleaning", "checkup", "whitening"]
SLOTS = ["Monday 9 AM", "Tuesday 2 PM", "Friday 11 AM"]
TOPICS = ["Billing question", "Technical support", "New account"]
PAYMENT = ["credit card", "debit card", "cash"]
NESTED = ["cleaning", "deep cleaning"]
FLOORS = ["first floor", "second floor"]


@pytest.mark.parametrize(
    ("said", "choices", "expected"),
    [
        ("cleaning", SERVICES, "cleaning"),
        ("a cleaning please", SERVICES, "cleaning"),
        ("Cleaning.", SERVICES, "cleaning"),
        ("a check up", SERVICES, "checkup"),
        ("whitning", SERVICES, "whitening"),
        ("the second one", SERVICES, "checkup"),
        ("the first", SERVICES, "cleaning"),
        ("the last one", SERVICES, "whitening"),
        ("number three", SERVICES, "whitening"),
        ("option 2", SERVICES, "checkup"),
        ("tuesday please", SLOTS, "Tuesday 2 PM"),
        ("the one on friday", SLOTS, "Friday 11 AM"),
        ("monday at nine a m", SLOTS, "Monday 9 AM"),
        ("eleven am", SLOTS, "Friday 11 AM"),
        ("billing", TOPICS, "Billing question"),
        ("tech support", TOPICS, "Technical support"),
        ("i want to open an account", TOPICS, "New account"),
        ("credit", PAYMENT, "credit card"),
        ("deep cleaning", NESTED, "deep cleaning"),
        ("just a cleaning", NESTED, "cleaning"),
        ("the second", FLOORS, "second floor"),
    ],
)
def test_picks_one_choice(said: str, choices: list[str], expected: str) -> None:
    result = extract("choice", said, now=NOW, choices=choices)
    assert result is not None, said
    assert result.value == expected
    assert result.spoken == expected


@pytest.mark.parametrize(
    ("said", "choices"),
    [
        ("cleaning or checkup", SERVICES),
        ("monday or tuesday", SLOTS),
        ("card", PAYMENT),
        ("pizza", SERVICES),
        ("i don't know", SERVICES),
        ("yes", SERVICES),
        ("um", SERVICES),
        ("", SERVICES),
        ("the fifth one", SERVICES),
    ],
)
def test_unclear_or_unknown_gives_none(said: str, choices: list[str]) -> None:
    assert extract("choice", said, now=NOW, choices=choices) is None
