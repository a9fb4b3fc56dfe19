"""Branch conditions: every operator, odd types are false (never errors), and
case selection with all/any."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.conditions import OPERATORS, choose, holds
from schemas.spec import BranchCase, Condition

VARS: dict[str, Any] = {
    "tier": "Gold",
    "age": 42,
    "score": 7.5,
    "count": "12",
    "day": "2026-12-01",
    "time": "09:30",
    "tags": ["vip", "Late"],
    "account": {"found": True, "balance": 0},
    "empty": "",
    "nothing": None,
    "none_list": [],
    "zero": 0,
    "no": False,
    "note": "Caller says the Router is BROKEN",
}


def cond(var: str, op: str, value: Any = None) -> Condition:
    return Condition.model_validate({"var": var, "op": op, "value": value})


@pytest.mark.parametrize(
    ("var", "op", "value", "expected"),
    [
        ("tier", "eq", "gold", True),
        ("tier", "eq", " GOLD ", True),
        ("tier", "eq", "silver", False),
        ("age", "eq", 42, True),
        ("age", "eq", "42", True),
        ("count", "eq", 12, True),
        ("account.found", "eq", True, True),
        ("account.balance", "eq", 0, True),
        ("missing", "eq", None, True),
        ("tier", "ne", "silver", True),
        ("tier", "ne", "gold", False),
        ("age", "gt", 41, True),
        ("age", "gt", 42, False),
        ("count", "gt", 9, True),  # numeric, not "12" < "9" as strings
        ("score", "ge", 7.5, True),
        ("score", "lt", 8, True),
        ("age", "le", 42, True),
        ("age", "le", 41.9, False),
        ("day", "gt", "2026-11-30", True),
        ("day", "lt", "2026-11-30", False),
        ("time", "ge", "09:30", True),
        ("time", "lt", "10:00", True),
        ("tier", "in", ["silver", "gold"], True),
        ("age", "in", [41, "42"], True),
        ("tier", "in", ["silver"], False),
        ("tier", "not_in", ["silver"], True),
        ("tier", "not_in", ["GOLD"], False),
        ("tags", "contains", "late", True),
        ("tags", "contains", "early", False),
        ("note", "contains", "router is broken", True),
        ("account", "contains", "found", True),
        ("account", "contains", "missing", False),
        ("tier", "exists", None, True),
        ("zero", "exists", None, True),
        ("no", "exists", None, True),
        ("empty", "exists", None, False),
        ("nothing", "exists", None, False),
        ("none_list", "exists", None, False),
        ("missing", "exists", None, False),
        ("missing", "missing", None, True),
        ("empty", "missing", None, True),
        ("account", "missing", None, False),
        ("note", "matches", r"router\s+is\s+broken", True),
        ("day", "matches", r"^\d{4}-12-", True),
        ("day", "matches", r"^\d{4}-11-", False),
    ],
)
def test_operator(var: str, op: str, value: Any, expected: bool) -> None:
    assert holds(cond(var, op, value), VARS) is expected


def test_every_operator_of_the_schema_is_implemented() -> None:
    from typing import get_args

    from schemas.spec import Operator

    assert set(OPERATORS) == set(get_args(Operator))


@pytest.mark.parametrize(
    ("var", "op", "value"),
    [
        ("tier", "gt", 5),
        ("tier", "lt", 5),
        ("age", "gt", "old"),
        ("age", "le", "old"),
        ("nothing", "gt", 0),
        ("missing", "lt", 10),
        ("tags", "gt", 1),
        ("account", "ge", {"a": 1}),
        ("no", "lt", 1),
        ("age", "gt", None),
        ("age", "contains", 4),
        ("tier", "in", "Gold and more"),
        ("age", "in", None),
    ],
)
def test_incomparable_values_are_false_not_errors(var: str, op: str, value: Any) -> None:
    assert holds(cond(var, op, value), VARS) is False


@pytest.mark.parametrize("pattern", ["(", "[a-", "*oops", "(?P<x>a)(?P<x>b)", "a" * 201])
def test_matches_with_a_bad_or_oversized_pattern_is_false(pattern: str) -> None:
    assert holds(cond("note", "matches", pattern), VARS) is False


def test_matches_needs_text_on_both_sides() -> None:
    assert holds(cond("age", "matches", "4"), VARS) is False
    assert holds(cond("note", "matches", 4), VARS) is False


def case(next_: str, match: str, *conditions: Condition) -> BranchCase:
    return BranchCase.model_validate({"when": list(conditions), "match": match, "next": next_})


def test_choose_all_any_first_match_and_default() -> None:
    gold = cond("tier", "eq", "gold")
    rich = cond("account.balance", "gt", 100)
    late = cond("tags", "contains", "late")
    cases = [
        case("vip", "all", gold, rich),
        case("watch", "any", rich, late),
        case("gold", "all", gold),
    ]
    assert choose(cases, "normal", VARS) == ("watch", 1)
    assert choose(cases, "normal", {**VARS, "account": {"balance": 500}}) == ("vip", 0)
    assert choose(cases, "normal", {"tier": "gold", "tags": []}) == ("gold", 2)
    assert choose(cases, "normal", {}) == ("normal", -1)
    assert choose([], "normal", VARS) == ("normal", -1)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


@given(
    st.sampled_from(sorted(OPERATORS)),
    VALUES,
    VALUES,
    st.sampled_from(["x", "x.y", "x.0", "x.y.z"]),
)
def test_holds_never_raises(op: str, actual: Any, expected: Any, path: str) -> None:
    result = holds(cond(path, op, expected), {"x": actual})
    assert isinstance(result, bool)
