"""default_registry / builtin_tool_names, argument schemas and the store."""

from __future__ import annotations

import json
from datetime import UTC, date, timedelta
from typing import Any

import jsonschema
import pytest

from tools.builtin import builtin_tool_names, default_registry
from tools.registry import ToolError, ToolRegistry
from tools.store import DemoStore, default_store

EXPECTED = [
    "accounts.lookup",
    "accounts.recent_charges",
    "billing.refund",
    "calendar.book",
    "calendar.cancel",
    "calendar.confirm",
    "calendar.find_slots",
    "calendar.lookup",
    "calendar.reschedule",
    "support.check_outage",
    "support.restart_router",
    "support.router_status",
    "tickets.create",
    "tickets.update",
]


def test_names() -> None:
    assert builtin_tool_names() == EXPECTED


def test_every_schema_is_valid_closed_and_described(registry: ToolRegistry) -> None:
    for name in registry.names():
        tool = registry.get(name)
        jsonschema.Draft202012Validator.check_schema(tool.parameters)
        assert tool.parameters["additionalProperties"] is False, name
        assert tool.description and tool.func is not None
        for field, schema in tool.parameters["properties"].items():
            assert schema.get("description"), f"{name}.{field}"
            optional = field not in tool.parameters["required"]
            assert ("null" in schema["type"]) == optional, f"{name}.{field}"
        assert tool.openai_schema()["function"]["name"] == name.replace(".", "__")


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("calendar.book", {}, "'day' is a required property"),
        ("calendar.book", {"day": "next tuesday"}, "day: 'next tuesday' does not match"),
        ("calendar.book", {"day": "2025-12-02", "time": "9am"}, "time: '9am' does not match"),
        (
            "calendar.find_slots",
            {"day": "2025-12-02", "part_of_day": "evening"},
            "part_of_day: 'evening' is not one of",
        ),
        (
            "calendar.cancel",
            {"appointment_id": "APT-1001", "force": True},
            "Additional properties are not allowed ('force'",
        ),
        (
            "accounts.recent_charges",
            {"account_number": "AC-1002", "limit": "five"},
            "limit: 'five' is not of type 'integer'",
        ),
        (
            "accounts.recent_charges",
            {"account_number": "AC-1002", "limit": 0},
            "limit: 0 is less than the minimum of 1",
        ),
        ("billing.refund", {"account_number": "AC-1002"}, "'reason' is a required property"),
        (
            "billing.refund",
            {"account_number": "AC-1002", "reason": "x", "amount": "10"},
            "amount: '10' is not of type 'number', 'null'",
        ),
        (
            "tickets.update",
            {"ticket_id": "T-1001", "status": "done"},
            "status: 'done' is not one of",
        ),
    ],
)
async def test_bad_arguments_name_the_field(
    registry: ToolRegistry, name: str, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ToolError) as err:
        await registry.get(name).ainvoke(args)
    assert f"invalid arguments for {name}" in str(err.value)
    assert message in str(err.value)


async def test_results_are_json_serialisable(call: Any) -> None:
    results = [
        await call("calendar.find_slots", day="2025-12-02"),
        await call("calendar.book", day="2025-12-02", phone="5551230009"),
        await call("calendar.lookup", phone="5551230001"),
        await call("accounts.lookup", phone="5551230002"),
        await call("accounts.recent_charges", account_number="AC-1002"),
        await call("billing.refund", account_number="AC-1002", reason="dup"),
        await call("tickets.create", summary="x"),
        await call("support.check_outage", zip_code="94103"),
        await call("support.router_status", account_number="AC-1003"),
    ]
    assert json.loads(json.dumps(results)) == results


def test_store_is_deterministic_and_resets(clock: Any) -> None:
    one, two = DemoStore(clock=clock), DemoStore(clock=clock)
    assert one.appointments == two.appointments and one.charges == two.charges
    assert one.accounts == two.accounts and one.routers == two.routers
    default_registry(one).get("calendar.cancel").func("APT-1001")  # type: ignore[misc]
    one.tickets.clear()
    assert one.next_id("APT") == "APT-1004"
    one.reset()
    assert one.appointments == two.appointments and one.tickets == two.tickets
    assert one.next_id("APT") == "APT-1004"


def test_seed_follows_the_clock(clock: Any) -> None:
    clock.advance(days=4)  # Friday 2025-12-05: next weekdays are Mon and Tue
    days = sorted({a.day for a in DemoStore(clock=clock).appointments.values()})
    assert days == [date(2025, 12, 8), date(2025, 12, 9)]


def test_aware_clock_is_read_as_wall_time() -> None:
    from datetime import datetime

    store = DemoStore(clock=lambda: datetime(2025, 12, 1, 8, 30, tzinfo=UTC))
    assert store.now() == datetime(2025, 12, 1, 8, 30)


async def test_default_registry_shares_the_process_store() -> None:
    day = date.today() + timedelta(days=7)
    day += timedelta(days=(7 - day.weekday()) % 7)  # a Monday at least a week ahead
    try:
        booked = (
            await default_registry()
            .get("calendar.book")
            .ainvoke({"day": day.isoformat(), "time": "15:00"})
        )
        slots = (
            await default_registry().get("calendar.find_slots").ainvoke({"day": day.isoformat()})
        )
        assert booked["time"] == "15:00" and "15:00" not in slots["slots"]
        assert default_store() is default_store()
    finally:
        default_store().reset()
