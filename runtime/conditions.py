"""Branch conditions: a fixed set of comparisons on variables, never `eval`.

A condition names a variable (dotted path), an operator and a literal value.
Comparisons between incomparable types (a string against a number, say) are
false rather than errors, so a caller's odd answer can never crash a call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from runtime.templates import lookup
from schemas.spec import BranchCase, Condition

_MAX_PATTERN = 200


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    return None


def _order(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        na, nb = _num(a), _num(b)
        if na is not None and nb is not None:
            return op(na, nb)
        if isinstance(a, str) and isinstance(b, str):
            return op(a, b)  # ISO dates and times compare correctly as strings
        return False

    return compare


def _eq(a: Any, b: Any) -> bool:
    na, nb = _num(a), _num(b)
    if na is not None and nb is not None:
        return na == nb
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    return bool(a == b)


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return b.casefold() in a.casefold()
    if isinstance(a, list | tuple):
        return any(_eq(x, b) for x in a)
    if isinstance(a, Mapping):
        try:
            return b in a
        except TypeError:  # an unhashable value (a list, a mapping) is never a key
            return False
    return False


def _matches(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str) or len(b) > _MAX_PATTERN:
        return False
    try:
        return re.search(b, a[:10_000], flags=re.IGNORECASE) is not None
    except re.error:
        return False


def _in(a: Any, b: Any) -> bool:
    return isinstance(b, list | tuple) and any(_eq(a, x) for x in b)


def _empty(v: Any) -> bool:
    return v is None or v == "" or v == [] or v == {}


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "gt": _order(lambda a, b: a > b),
    "ge": _order(lambda a, b: a >= b),
    "lt": _order(lambda a, b: a < b),
    "le": _order(lambda a, b: a <= b),
    "in": _in,
    "not_in": lambda a, b: not _in(a, b),
    "contains": _contains,
    "exists": lambda a, _b: not _empty(a),
    "missing": lambda a, _b: _empty(a),
    "matches": _matches,
}


def holds(condition: Condition, variables: Mapping[str, Any]) -> bool:
    """Whether one condition is true for these variables."""
    return OPERATORS[condition.op](lookup(variables, condition.var), condition.value)


def choose(cases: list[BranchCase], default: str, variables: Mapping[str, Any]) -> tuple[str, int]:
    """Target of the first case whose conditions hold (all or any), with its
    index; `(default, -1)` when none does."""
    for i, case in enumerate(cases):
        results = (holds(c, variables) for c in case.when)
        if all(results) if case.match == "all" else any(results):
            return case.next, i
    return default, -1
