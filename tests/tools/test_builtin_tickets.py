"""tickets.create and tickets.update. Seed: T-1001 (resolved) for AC-1003."""

from __future__ import annotations

from typing import Any

import pytest

from tools.registry import ToolError
from tools.store import DemoStore


async def test_create_opens_a_ticket(call: Any, store: DemoStore) -> None:
    out = await call(
        "tickets.create",
        summary="  Internet down since this morning ",
        phone="5551230003",
        account_number="1003",
        priority="high",
        category="internet",
    )
    assert out["ticket_id"] == "T-1002" and out["ticket_id_spoken"] == "T 1 0 0 2"
    assert out["status"] == "open" and out["priority"] == "high"
    assert out["summary"] == "Internet down since this morning"
    assert out["phone"] == "+15551230003" and out["account_number"] == "AC-1003"
    assert out["created_at"] == "2025-12-01T08:30:00"
    assert store.tickets["T-1002"].category == "internet"


async def test_create_defaults(call: Any) -> None:
    out = await call("tickets.create", summary="Question", priority=None, category=None)
    assert (out["priority"], out["category"], out["phone"]) == ("normal", "general", None)
    assert (await call("tickets.create", summary="Another"))["ticket_id"] == "T-1003"


async def test_create_refusals(call: Any) -> None:
    with pytest.raises(ToolError, match="needs a summary"):
        await call("tickets.create", summary="   ")
    with pytest.raises(ToolError, match="no account AC-7777"):
        await call("tickets.create", summary="x", account_number="AC-7777")
    with pytest.raises(ToolError, match="'nope' is not a phone number"):
        await call("tickets.create", summary="x", phone="nope")
    with pytest.raises(ToolError, match="priority: 'urgent' is not one of"):
        await call("tickets.create", summary="x", priority="urgent")


async def test_update_changes_status_and_appends_notes(call: Any) -> None:
    created = await call("tickets.create", summary="Slow Wi-Fi")
    out = await call(
        "tickets.update",
        ticket_id=created["ticket_id"],
        status="pending",
        note="Technician visit booked",
    )
    assert out["status"] == "pending" and out["notes"] == ["Technician visit booked"]
    out = await call("tickets.update", ticket_id="t 1002", note="Visit done")
    assert out["status"] == "pending" and out["notes"][-1] == "Visit done"
    out = await call("tickets.update", ticket_id="1002", status="resolved")
    assert out["status"] == "resolved" and len(out["notes"]) == 2


async def test_update_refusals(call: Any) -> None:
    with pytest.raises(ToolError, match="no ticket T-4040"):
        await call("tickets.update", ticket_id="T-4040", status="closed")
    with pytest.raises(ToolError, match="Give a new status or a note"):
        await call("tickets.update", ticket_id="T-1001", note="  ")
    with pytest.raises(ToolError, match="not a ticket number"):
        await call("tickets.update", ticket_id="ticket one", status="closed")
