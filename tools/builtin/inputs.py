"""Tool arguments: JSON Schema building blocks and parsers for what callers say.

Optional parameters also accept `null`, because a graph's `{slot}` argument
renders to null when the slot was never filled; null means "not given". The
parsers turn accepted strings into typed values or raise `ToolError` with a
sentence that can be read to the caller or logged as is.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import phonenumbers

from tools.registry import ToolError
from tools.store import CENT

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
TIME_PATTERN = r"^\d{1,2}:\d{2}(:\d{2})?$"
_ACCOUNT = re.compile(r"^(?:AC)?[\s-]*(\d{4,})$", re.IGNORECASE)
_TICKET = re.compile(r"^(?:T)?[\s-]*(\d{4,})$", re.IGNORECASE)
_ZIP = re.compile(r"(?<!\d)(\d{5})(?:-\d{4})?(?!\d)")


def params(properties: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    """An object schema with no extra properties; optional fields become nullable."""
    props: dict[str, dict[str, Any]] = {}
    for name, schema in properties.items():
        if name in required:
            props[name] = schema
        else:
            props[name] = _nullable(schema)
    return {
        "type": "object",
        "properties": props,
        "required": list(required),
        "additionalProperties": False,
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    out = dict(schema)
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def parse_day(raw: str) -> date:
    """An ISO `YYYY-MM-DD` day; `ToolError` for an impossible date."""
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ToolError(f"{raw!r} is not a valid date; use YYYY-MM-DD.") from None


def parse_time(raw: str) -> time:
    """A 24-hour `HH:MM` (seconds ignored); `ToolError` for an impossible time."""
    parts = raw.strip().split(":")
    try:
        hour, minute = int(parts[0]), int(parts[1])
        return time(hour, minute)
    except (ValueError, IndexError):
        raise ToolError(f"{raw!r} is not a valid time; use 24-hour HH:MM.") from None


def parse_phone(raw: str, region: str = "US") -> str:
    """The E.164 form of a phone number written in any common way
    ("5551230001", "(555) 123-0001", "+15551230001"); `ToolError` otherwise."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ToolError(f"{raw!r} is not a phone number.") from None
    if not phonenumbers.is_possible_number(number):
        raise ToolError(f"{raw!r} is not a complete phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_account_number(raw: str) -> str:
    """`AC-NNNN` from "AC-1001", "ac 1001" or "1001"; `ToolError` otherwise."""
    m = _ACCOUNT.match(raw.strip())
    if not m:
        raise ToolError(f"{raw!r} is not an account number like AC-1001.")
    return f"AC-{m.group(1)}"


def parse_ticket_id(raw: str) -> str:
    """`T-NNNN` from "T-1001", "t1001" or "1001"; `ToolError` otherwise."""
    m = _TICKET.match(raw.strip())
    if not m:
        raise ToolError(f"{raw!r} is not a ticket number like T-1001.")
    return f"T-{m.group(1)}"


def parse_zip(raw: str | int) -> str:
    """The 5-digit US ZIP code in `raw` ("94103", "94103-1234", "it's 94103",
    94103); `ToolError` when there is none."""
    text = f"{raw:05d}" if isinstance(raw, int) else raw
    m = _ZIP.search(text)
    if not m:
        raise ToolError(f"{raw!r} does not contain a 5-digit ZIP code.")
    return m.group(1)


def parse_money(raw: float | int) -> Decimal:
    """A positive amount rounded to cents; `ToolError` for zero, negative or NaN."""
    try:
        amount = Decimal(str(raw)).quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ToolError(f"{raw!r} is not an amount of money.") from None
    if not amount.is_finite() or amount <= 0:
        raise ToolError(f"The amount must be more than zero, not {raw!r}.")
    return amount
