"""The built-in tools on the database store (SQLite and PostgreSQL): the same
results as on the in-process store, refunds exactly once under concurrent
retries from two engines, and idempotent seeding."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from runtime.db.business_models import BusinessAccount, BusinessAppointment, BusinessRefund
from runtime.db.migrations import init_db
from tests.runtime.db.dbhelpers import DIALECTS, Database, provision
from tests.tools.conftest import FakeClock
from tools.builtin import default_registry
from tools.builtin.accounts import Accounts
from tools.db_store import DbStore, StoreConfigError, open_store, seed_business_data, store_kind
from tools.registry import ToolError, ToolRegistry
from tools.store import DemoStore


@pytest.fixture(params=DIALECTS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    pg_url = request.getfixturevalue("database_url") if request.param == "postgresql" else None
    async with provision(request.param, tmp_path, pg_url) as db:
        engine = await init_db(db.url, schema=db.schema)
        await engine.dispose()
        yield db


@pytest.fixture
def db_store(database: Database, clock: FakeClock) -> Any:
    store = DbStore.from_url(database.url, schema=database.schema, clock=clock)
    seed_business_data(store.engine, clock)
    yield store
    store.dispose()


# (tool, arguments) in order; each step's outcome (result or error) is compared.
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("calendar.find_slots", {"day": "2025-12-01"}),
    ("calendar.book", {"day": "2025-12-02", "time": "11:00", "patient": "Ann", "phone": "5550001"}),
    ("calendar.book", {"day": "2025-12-02", "time": "11:00"}),
    ("calendar.book", {"day": "2025-12-02"}),
    ("calendar.book", {"day": "2025-12-07"}),
    ("calendar.reschedule", {"appointment_id": "APT-1001", "day": "2025-12-03", "time": "15:00"}),
    ("calendar.confirm", {"appointment_id": "APT-1001"}),
    ("calendar.lookup", {"phone": "(555) 123-0001"}),
    ("calendar.cancel", {"appointment_id": "APT-1004"}),
    ("calendar.cancel", {"appointment_id": "APT-1004"}),
    ("calendar.book", {"day": "2025-12-02", "time": "11:00", "patient": "Bo"}),
    ("calendar.find_slots", {"day": "2025-12-02", "part_of_day": "morning"}),
    ("accounts.lookup", {"phone": "555-123-0002"}),
    ("accounts.recent_charges", {"account_number": "AC-1002"}),
    ("billing.refund", {"account_number": "AC-1002", "reason": "billed twice"}),
    ("billing.refund", {"account_number": "AC-1002", "reason": "billed twice"}),
    ("billing.refund", {"account_number": "1002", "reason": "again", "charge_id": "CH-2006"}),
    (
        "billing.refund",
        {
            "account_number": "AC-1001",
            "reason": "x",
            "idempotency_key": "k1",
            "charge_id": "CH-2003",
            "amount": 10,
        },
    ),
    (
        "billing.refund",
        {
            "account_number": "AC-1001",
            "reason": "x",
            "idempotency_key": "k1",
            "charge_id": "CH-2003",
            "amount": 10,
        },
    ),
    (
        "billing.refund",
        {
            "account_number": "AC-1001",
            "reason": "x",
            "idempotency_key": "k1",
            "charge_id": "CH-2001",
        },
    ),
    ("accounts.recent_charges", {"account_number": "AC-1002"}),
    ("accounts.lookup", {"account_number": "AC-1001"}),
    (
        "tickets.create",
        {"summary": "No dial tone", "account_number": "AC-1003", "priority": "high"},
    ),
    ("tickets.update", {"ticket_id": "T-1002", "status": "pending", "note": "Tech booked"}),
    ("tickets.update", {"ticket_id": "T-9999", "status": "closed"}),
    ("support.check_outage", {"zip_code": "94103"}),
    ("support.router_status", {"phone": "5551230003"}),
    ("support.restart_router", {"account_number": "AC-1003"}),
    ("support.restart_router", {"account_number": "AC-1004"}),
    ("support.router_status", {"account_number": "AC-1003"}),
]


async def _outcomes(registry: ToolRegistry) -> list[Any]:
    out: list[Any] = []
    for name, args in SCRIPT:
        try:
            out.append(await registry.get(name).ainvoke(args))
        except ToolError as exc:
            out.append(f"error: {exc}")
    return out


async def test_tools_give_the_same_results_on_both_stores(
    db_store: DbStore, clock: FakeClock
) -> None:
    memory = await _outcomes(default_registry(DemoStore(clock=clock)))
    database = await _outcomes(default_registry(db_store))
    for (name, args), want, got in zip(SCRIPT, memory, database, strict=True):
        assert got == want, f"{name} {args}"
    # The script exercised refusals as well as successes.
    assert sum(isinstance(o, str) for o in memory) >= 4
    assert memory[15]["replayed"] is True and memory[14]["replayed"] is False


def _race(stores: list[DbStore], key: str | None) -> list[Any]:
    """Every store refunds AC-1002's duplicate at once; the outcomes."""
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)

    def refund(i: int) -> None:
        barrier.wait()
        try:
            results[i] = Accounts(stores[i]).refund("AC-1002", "billed twice", idempotency_key=key)
        except ToolError as exc:
            results[i] = exc

    threads = [threading.Thread(target=refund, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.parametrize("key", ["retry-key-1", None])
async def test_concurrent_retries_from_two_engines_refund_exactly_once(
    database: Database, clock: FakeClock, key: str | None
) -> None:
    first = DbStore.from_url(database.url, schema=database.schema, clock=clock)
    second = DbStore.from_url(database.url, schema=database.schema, clock=clock)
    try:
        await asyncio.to_thread(seed_business_data, first.engine, clock)
        results = await asyncio.to_thread(_race, [first, second, first, second], key)
        assert all(isinstance(r, dict) for r in results), results
        assert {r["refund_id"] for r in results} == {"RF-1002"}
        assert sorted(r["replayed"] for r in results) == [False, True, True, True]
        with first.engine.connect() as conn:
            rows = conn.execute(
                select(func.count()).where(BusinessRefund.charge_id == "CH-2006")
            ).scalar_one()
            balance = conn.execute(
                select(BusinessAccount.balance_cents).where(
                    BusinessAccount.account_number == "AC-1002"
                )
            ).scalar_one()
        assert rows == 1
        assert balance == 8998 - 4499  # debited once
    finally:
        first.dispose()
        second.dispose()


async def test_a_slot_raced_by_two_engines_is_booked_once(
    database: Database, clock: FakeClock
) -> None:
    stores = [DbStore.from_url(database.url, schema=database.schema, clock=clock) for _ in range(2)]
    try:
        await asyncio.to_thread(seed_business_data, stores[0].engine, clock)
        calls = [
            default_registry(s).get("calendar.book").ainvoke({"day": "2025-12-05", "time": "10:00"})
            for s in stores
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        booked = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, ToolError)]
        assert len(booked) == 1 and len(refused) == 1, results
        assert "already taken" in str(refused[0])
        with stores[0].engine.connect() as conn:
            live = conn.execute(
                select(func.count()).where(
                    BusinessAppointment.day == date(2025, 12, 5),
                    BusinessAppointment.status != "cancelled",
                )
            ).scalar_one()
        assert live == 1
    finally:
        for s in stores:
            s.dispose()


def test_seeding_twice_inserts_nothing_new(db_store: DbStore, clock: FakeClock) -> None:
    again = seed_business_data(db_store.engine, clock)
    assert again.total == 0
    clock.advance(days=3)  # a later day's seed has other dates but the same keys
    assert seed_business_data(db_store.engine, clock).total == 0
    with db_store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(BusinessAccount)).scalar_one() == 5


def test_an_unseeded_database_says_how_to_fix_it(database: Database, clock: FakeClock) -> None:
    store = DbStore.from_url(database.url, schema=database.schema, clock=clock)
    try:
        with pytest.raises(RuntimeError, match="seed-demo"), store.transaction() as tx:
            tx.add_ticket("x", "normal", "general", None, None)
    finally:
        store.dispose()


def test_the_store_setting_chooses_memory_or_database(tmp_path: Path) -> None:
    assert store_kind("memory", {}) == "memory"
    assert store_kind("db", {}) == "db"
    assert store_kind("db", {"SWITCHBOARD_TOOLS_STORE": " Memory "}) == "memory"
    with pytest.raises(StoreConfigError, match="'redis'"):
        store_kind("memory", {"SWITCHBOARD_TOOLS_STORE": "redis"})
    assert isinstance(open_store("memory"), DemoStore)
