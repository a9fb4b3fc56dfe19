"""accounts.* and billing.refund: lookups, duplicate charges, refunds exactly once.

Seed: AC-1002 (James Wilson, +15551230002) was billed $44.99 twice four days
ago (CH-2005 and CH-2006); AC-1001's rental CH-2002 was refunded (RF-1001).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from tools.builtin.accounts import Accounts
from tools.registry import ToolError
from tools.store import DemoStore


@pytest.mark.parametrize("phone", ["5551230001", "+15551230001", "(555) 123-0001", "555.123.0001"])
async def test_lookup_by_phone_in_any_format(call: Any, phone: str) -> None:
    out = await call("accounts.lookup", phone=phone)
    assert out["found"] is True and out["account_number"] == "AC-1001"
    assert out["name"] == "Maria Garcia" and out["first_name"] == "Maria"
    assert out["balance"] == 42.5 and out["balance_spoken"] == "$42.50"
    assert out["due_date"] == "2025-12-13" and out["due_date_spoken"] == "December 13"


async def test_lookup_by_account_number_wins_over_phone(call: Any) -> None:
    out = await call("accounts.lookup", account_number="ac 1002", phone="5551230001")
    assert out["name"] == "James Wilson"
    assert (await call("accounts.lookup", account_number="1005"))["balance_spoken"] == (
        "a credit of $10.00"
    )


async def test_unknown_or_garbled_customer_is_not_found(call: Any) -> None:
    assert (await call("accounts.lookup", phone="+15550000000"))["found"] is False
    assert (await call("accounts.lookup", account_number="AC-9999"))["found"] is False
    garbled = await call("accounts.lookup", phone="my number", account_number=None)
    assert garbled["found"] is False and "not a phone number" in garbled["reason"]
    with pytest.raises(ToolError, match="Give a phone number or an account number"):
        await call("accounts.lookup", phone=None)


async def test_recent_charges_spot_the_duplicate(call: Any) -> None:
    out = await call("accounts.recent_charges", account_number="AC-1002")
    assert [c["charge_id"] for c in out["charges"]] == ["CH-2006", "CH-2005", "CH-2004"]
    assert out["charges"][0] == {
        "charge_id": "CH-2006",
        "date": "2025-11-27",
        "date_spoken": "November 27",
        "amount": 44.99,
        "amount_spoken": "$44.99",
        "description": "Fiber 500 monthly service",
        "refunded": False,
    }
    assert out["duplicate_charge_id"] == "CH-2006" and out["duplicate_amount"] == 44.99
    assert out["duplicate_spoken"] == (
        "the $44.99 charge for Fiber 500 monthly service on November 27 was billed twice"
    )
    assert out["spoken"].startswith(
        "$44.99 for Fiber 500 monthly service on November 27, $44.99 for"
    ) and out["spoken"].endswith(" and $44.99 for Fiber 500 monthly service on October 28")
    assert (await call("accounts.recent_charges", account_number="AC-1002", limit=1))["count"] == 1


async def test_monthly_charges_a_month_apart_are_not_duplicates(call: Any) -> None:
    out = await call("accounts.recent_charges", account_number="AC-1001")
    assert out["duplicate_charge_id"] is None and out["has_duplicate"] is False
    assert out["duplicate_spoken"] is None
    assert {c["charge_id"]: c["refunded"] for c in out["charges"]}["CH-2002"] is True
    with pytest.raises(ToolError, match="no account AC-4242"):
        await call("accounts.recent_charges", account_number="AC-4242")


async def test_refund_the_duplicate_credits_the_balance(call: Any) -> None:
    out = await call("billing.refund", account_number="AC-1002", reason="billed twice")
    assert out["charge_id"] == "CH-2006" and out["status"] == "issued"
    assert out["amount"] == 44.99 and out["amount_spoken"] == "$44.99"
    assert out["new_balance"] == 44.99 and out["replayed"] is False
    after = await call("accounts.recent_charges", account_number="AC-1002")
    assert after["duplicate_charge_id"] is None and after["charges"][0]["refunded"] is True
    assert (await call("accounts.lookup", account_number="AC-1002"))["balance"] == 44.99


async def test_retry_without_key_returns_the_first_refund(call: Any, store: DemoStore) -> None:
    first = await call("billing.refund", account_number="AC-1002", reason="billed twice")
    again = await call("billing.refund", account_number="AC-1002", reason="billed twice")
    explicit = await call(
        "billing.refund", account_number="AC-1002", charge_id="CH-2006", reason="again"
    )
    assert first["refund_id"] == again["refund_id"] == explicit["refund_id"]
    assert again["replayed"] is True and again["new_balance"] == 44.99
    assert len(store.refunds) == 2  # the seeded RF-1001 and this one


async def test_without_key_a_later_request_is_refused(call: Any, clock: Any) -> None:
    await call("billing.refund", account_number="AC-1002", reason="billed twice")
    clock.advance(hours=2)
    with pytest.raises(ToolError, match="CH-2006 was already refunded"):
        await call("billing.refund", account_number="AC-1002", reason="billed twice")


async def test_same_idempotency_key_returns_the_same_refund(call: Any, store: DemoStore) -> None:
    args = {
        "account_number": "AC-1002",
        "charge_id": "CH-2006",
        "reason": "dup",
        "idempotency_key": "call-7:CH-2006",
    }
    first = await call("billing.refund", **args)
    second = await call("billing.refund", **args)
    without_charge = await call(
        "billing.refund", account_number="AC-1002", reason="dup", idempotency_key="call-7:CH-2006"
    )
    assert first["refund_id"] == second["refund_id"] == without_charge["refund_id"]
    assert store.accounts["AC-1002"].balance == Decimal("44.99")


async def test_second_refund_of_a_charge_is_refused(call: Any) -> None:
    await call(
        "billing.refund",
        account_number="AC-1002",
        charge_id="CH-2006",
        reason="dup",
        idempotency_key="k1",
    )
    with pytest.raises(ToolError, match="CH-2006 was already refunded"):
        await call(
            "billing.refund",
            account_number="AC-1002",
            charge_id="CH-2006",
            reason="dup",
            idempotency_key="k2",
        )
    with pytest.raises(ToolError, match="CH-2002 was already refunded"):
        await call("billing.refund", account_number="AC-1001", charge_id="CH-2002", reason="x")
    with pytest.raises(ToolError, match="key 'k1' was already used"):
        await call(
            "billing.refund",
            account_number="AC-1002",
            charge_id="CH-2005",
            reason="dup",
            idempotency_key="k1",
        )


async def test_partial_refund_and_amount_limits(call: Any) -> None:
    with pytest.raises(ToolError, match=r"\$60.00 is more than the charge of \$44.99"):
        await call(
            "billing.refund",
            account_number="AC-1002",
            charge_id="CH-2004",
            amount=60,
            reason="goodwill",
        )
    part = await call(
        "billing.refund",
        account_number="AC-1002",
        charge_id="CH-2004",
        amount=10,
        reason="goodwill",
    )
    assert part["amount"] == 10.0 and part["amount_spoken"] == "$10.00"
    with pytest.raises(ToolError, match="already refunded"):
        await call(
            "billing.refund",
            account_number="AC-1002",
            charge_id="CH-2004",
            amount=5,
            reason="goodwill",
        )


async def test_refund_refusals_for_missing_things(call: Any) -> None:
    with pytest.raises(ToolError, match="no duplicated charge on account AC-1003"):
        await call("billing.refund", account_number="AC-1003", reason="x")
    with pytest.raises(ToolError, match="no charge CH-2006 on account AC-1001"):
        await call("billing.refund", account_number="AC-1001", charge_id="CH-2006", reason="x")
    with pytest.raises(ToolError, match="amount: 0 is less than or equal to the minimum"):
        await call("billing.refund", account_number="AC-1002", amount=0, reason="x")


def test_concurrent_retries_refund_once(store: DemoStore) -> None:
    accounts = Accounts(store)
    start = threading.Barrier(8)

    def one(_: int) -> str:
        start.wait()
        return str(accounts.refund("AC-1002", "dup", idempotency_key="retry")["refund_id"])

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(one, range(8)))
    assert len(ids) == 1
    assert [r.charge_id for r in store.refunds.values()] == ["CH-2002", "CH-2006"]
    assert store.accounts["AC-1002"].balance == Decimal("44.99")


async def test_account_without_charges(call: Any, store: DemoStore) -> None:
    for charge_id in [c.charge_id for c in store.account_charges("AC-1005")]:
        del store.charges[charge_id]
    out = await call("accounts.recent_charges", account_number="AC-1005")
    assert (out["charges"], out["spoken"], out["has_duplicate"]) == ([], "no recent charges", False)
