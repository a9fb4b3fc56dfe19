"""Phone and email slots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from runtime.slots import extract

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("two one two five five five oh one four two", "+12125550142"),
        ("my number is 212 555 0142", "+12125550142"),
        ("(212) 555-0142", "+12125550142"),
        ("two one two, five five five, oh one four two.", "+12125550142"),
        ("oh my number is two one two five five five zero one four two", "+12125550142"),
        ("two one two five five five oh one double four", "+12125550144"),
        ("two one two five five five oh one forty two", "+12125550142"),
        ("four one five five five five two six seven one", "+14155552671"),
        ("one eight hundred five five five one two one two", "+18005551212"),
        ("2125550142 extension 23", "+12125550142"),
        ("plus four four two oh seven nine four six oh nine five eight", "+442079460958"),
        ("+44 20 7946 0958", "+442079460958"),
        # unassigned area code, plausible shape: accepted (demo and fictional numbers)
        ("five five five one two three zero zero zero two", "+15551230002"),
    ],
)
def test_spoken_phone_numbers(said: str, expected: str) -> None:
    result = extract("phone", said, now=NOW)
    assert result is not None, said
    assert result.value == expected


@pytest.mark.parametrize(
    "said",
    [
        "my number is",
        "",
        "i don't have one",
        "five five five one two three four",  # no area code
        "one five five one two three four five six seven",  # area codes never start with 1
        "one two three",
        "9" * 40,
    ],
)
def test_not_a_valid_phone_number_gives_none(said: str) -> None:
    assert extract("phone", said, now=NOW) is None


def test_phone_region_sets_the_default_country() -> None:
    result = extract(
        "phone", "oh two oh seven nine four six oh nine five eight", now=NOW, region="GB"
    )
    assert result is not None and result.value == "+442079460958"


def test_phone_read_back_groups_digits() -> None:
    home = extract("phone", "2125550142", now=NOW)
    abroad = extract("phone", "+44 20 7946 0958", now=NOW)
    assert home is not None and home.spoken == "2 1 2, 5 5 5, 0 1 4 2"
    assert abroad is not None and abroad.spoken == "plus 4 4, 2 0, 7 9 4 6, 0 9 5 8"


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("john dot smith at gmail dot com", "john.smith@gmail.com"),
        ("my email is john dot smith at gmail dot com", "john.smith@gmail.com"),
        ("John.Smith@Gmail.com", "john.smith@gmail.com"),
        ("it's john.smith at gmail dot com", "john.smith@gmail.com"),
        ("j underscore doe at g mail dot co dot uk", "j_doe@gmail.co.uk"),
        ("sure it is mary seventy five at yahoo dot com thanks", "mary75@yahoo.com"),
        ("jane dash doe at example dot org please", "jane-doe@example.org"),
        ("email me at bob at work dot com", "bob@work.com"),
        ("j o h n at gmail dot com", "john@gmail.com"),
    ],
)
def test_spoken_email_addresses(said: str, expected: str) -> None:
    result = extract("email", said, now=NOW)
    assert result is not None, said
    assert result.value == expected


@pytest.mark.parametrize(
    "said",
    ["at", "", "john at", "john at gmail", "at gmail dot com", "i don't have one", "a@b", "x@y.z"],
)
def test_not_an_email_gives_none(said: str) -> None:
    assert extract("email", said, now=NOW) is None


def test_email_read_back_spells_symbols() -> None:
    result = extract("email", "j_doe-x@mail.example.com", now=NOW)
    assert result is not None
    assert result.spoken == "j underscore doe dash x at mail dot example dot com"
