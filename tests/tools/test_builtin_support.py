"""support.* tools. Seed (clock Monday 2025-12-01 08:30): an outage in SoMa
(94103) until 11:30; AC-1003's router offline since 06:15; AC-1004 is in SoMa."""

from __future__ import annotations

from typing import Any

import pytest

from tools.builtin.support import Support
from tools.registry import ToolError
from tools.store import DemoStore


@pytest.mark.parametrize("zip_code", ["94103", 94103, "it's 94103-2201", " 94103 "])
async def test_outage_in_seeded_area(call: Any, zip_code: Any) -> None:
    out = await call("support.check_outage", zip_code=zip_code)
    assert out["outage"] is True and out["area"] == "SoMa" and out["zip_code"] == "94103"
    assert out["eta"] == "2025-12-01T11:30" and out["eta_spoken"] == "around 11:30 AM"
    assert "outage in SoMa" in out["spoken"]


async def test_no_outage_elsewhere_or_after_eta(call: Any, clock: Any) -> None:
    out = await call("support.check_outage", zip_code="94107")
    assert (out["outage"], out["area"], out["served"]) == (False, "Mission Bay", True)
    assert out["eta_spoken"] is None
    other = await call("support.check_outage", zip_code=2134)
    assert other["zip_code"] == "02134" and other["served"] is False
    assert other["spoken"] == "There is no known outage in ZIP code 0 2 1 3 4"
    clock.advance(hours=3)
    assert (await call("support.check_outage", zip_code="94103"))["outage"] is False


def test_outage_eta_past_midnight_says_tomorrow(clock: Any) -> None:
    clock.advance(hours=14, minutes=10)  # 22:40: seeded ETA is 02:00 next day
    out = Support(DemoStore(clock=clock)).check_outage("94103")
    assert out["eta_spoken"] == "around 2 AM tomorrow"


async def test_check_outage_needs_a_zip(call: Any) -> None:
    with pytest.raises(ToolError, match="does not contain a 5-digit ZIP code"):
        await call("support.check_outage", zip_code="nine four one")
    with pytest.raises(ToolError, match=r"zip_code: 1\.5 is not of type"):
        await call("support.check_outage", zip_code=1.5)


async def test_router_status(call: Any, clock: Any) -> None:
    down = await call("support.router_status", account_number="AC-1003")
    assert down["online"] is False and down["model"] == "TP-Link Archer AX55"
    assert down["last_seen_spoken"] == "2 hours ago" and down["status_spoken"] == "offline"
    up = await call("support.router_status", phone="555-123-0001")
    assert up["online"] is True and up["last_seen_spoken"] == "just now"
    clock.advance(minutes=40)
    assert (await call("support.router_status", account_number="1003"))[
        "last_seen_spoken"
    ] == "2 hours ago"
    clock.advance(hours=1)
    assert (await call("support.router_status", account_number="1003"))[
        "last_seen_spoken"
    ] == "3 hours ago"


async def test_router_status_unknown_customer(call: Any) -> None:
    assert (await call("support.router_status", phone="+15550001111"))["found"] is False
    assert (await call("support.router_status", phone="hello"))["found"] is False
    with pytest.raises(ToolError, match="Give an account number or a phone number"):
        await call("support.router_status")


async def test_restart_brings_router_online_unless_outage(call: Any) -> None:
    out = await call("support.restart_router", account_number="AC-1003")
    assert out["restored"] is True and out["online"] is True
    assert (await call("support.router_status", account_number="AC-1003"))["online"] is True
    blocked = await call("support.restart_router", phone="5551230004")
    assert blocked["restored"] is False and blocked["online"] is False
    assert blocked["area_outage"] is True
    with pytest.raises(ToolError, match="couldn't find a router"):
        await call("support.restart_router", account_number="AC-9999")
