"""Built-in local tools the example agents call: calendar, accounts and billing,
tickets and technical support, all backed by one business data store: the
in-process `DemoStore` or the database's `tools.db_store.DbStore`."""

from __future__ import annotations

from tools.builtin.accounts import account_tools
from tools.builtin.calendar import calendar_tools
from tools.builtin.data import BusinessStore
from tools.builtin.support import support_tools
from tools.builtin.tickets import ticket_tools
from tools.registry import ToolRegistry
from tools.store import DemoStore, default_store

__all__ = ["builtin_tool_names", "default_registry"]


def default_registry(store: BusinessStore | None = None) -> ToolRegistry:
    """A registry of every built-in tool, all bound to `store` (the process-wide
    default store when None), so they share one set of demo data."""
    bound = store if store is not None else default_store()
    return ToolRegistry(
        [*calendar_tools(bound), *account_tools(bound), *ticket_tools(bound), *support_tools(bound)]
    )


def builtin_tool_names() -> list[str]:
    """Sorted names of the built-in tools (what a graph may call by default)."""
    return default_registry(DemoStore()).names()
