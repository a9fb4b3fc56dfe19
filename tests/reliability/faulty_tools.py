"""Python tools that misbehave, loaded by a service worker through a tools
file (`python: tests.reliability.faulty_tools:hang`)."""

from __future__ import annotations

import asyncio
from typing import Any


async def hang(name: str) -> dict[str, Any]:
    """Look the caller up (never answers: waits forever)."""
    await asyncio.Event().wait()
    return {"name": name}


async def fail(name: str) -> dict[str, Any]:
    """Open a ticket for the caller (always fails: the backend is down)."""
    raise ConnectionError(f"ticket backend unreachable for {name}")
