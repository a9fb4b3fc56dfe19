"""A demo store on a fake clock (Monday 2025-12-01 08:30) and its registry."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tools.builtin import default_registry
from tools.registry import ToolRegistry
from tools.store import DemoStore

MONDAY_MORNING = datetime(2025, 12, 1, 8, 30)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime = MONDAY_MORNING) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> DemoStore:
    return DemoStore(clock=clock)


@pytest.fixture
def registry(store: DemoStore) -> ToolRegistry:
    return default_registry(store)


@pytest.fixture
def call(registry: ToolRegistry) -> Any:
    """`await call("calendar.book", day=...)`: validate and run a tool as a graph would."""

    async def run(name: str, **args: Any) -> Any:
        return await registry.get(name).ainvoke(args)

    return run
