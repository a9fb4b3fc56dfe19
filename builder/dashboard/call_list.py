"""The call list's data: every call matching a filter (paged through), the
table rows the Calls page shows, and the CSV export of a filtered list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from builder.dashboard.data import Database
from builder.dashboard.export import to_csv
from runtime.db import queries
from runtime.db.queries import MAX_PAGE, CallFilter, CallSummary

#: Most calls one CSV export holds.
MAX_EXPORT = 100_000


async def all_calls(
    engine: AsyncEngine,
    filters: CallFilter,
    *,
    cap: int = MAX_EXPORT,
    page_size: int = MAX_PAGE,
) -> list[CallSummary]:
    """Every call matching `filters` (newest first), at most `cap`, read
    `page_size` at a time."""
    out: list[CallSummary] = []
    while len(out) < cap:
        page = await queries.list_calls(
            engine, filters, limit=min(page_size, cap - len(out)), offset=len(out)
        )
        out.extend(page.items)
        if len(page.items) == 0 or len(out) >= page.total:
            break
    return out


def export_csv(db: Database, filters: CallFilter) -> bytes:
    """The CSV of every call matching `filters` (one row per call)."""
    calls = db.run(lambda engine: all_calls(engine, filters))
    return to_csv(calls)


def table_rows(items: Sequence[CallSummary]) -> list[dict[str, Any]]:
    """The rows of the call table."""
    return [
        {
            "started (UTC)": f"{c.started_at:%Y-%m-%d %H:%M:%S}",
            "agent": c.agent,
            "version": (c.graph_hash or "")[:10],
            "caller": c.caller or "",
            "transport": c.transport,
            "outcome": c.outcome or "in progress",
            "duration_s": None if c.duration_s is None else round(c.duration_s, 1),
            "turns": c.turn_count,
            "sentiment": c.sentiment_label or "",
            "id": c.id,
        }
        for c in items
    ]
