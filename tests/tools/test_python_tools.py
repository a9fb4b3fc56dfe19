"""Python tools: `module:function` references, LangChain `@tool` objects and
entry-point plugins become registry tools with JSON-Schema parameters."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from langchain_core.tools import tool as lc_tool

from tools.config import ToolConfigError, build_registry
from tools.python_tools import (
    ToolLoadError,
    entry_point_tools,
    load_reference,
    python_tool,
    tool_from_function,
    tool_from_object,
)
from tools.registry import ToolError

MODULE = '''
import threading
from datetime import date
from typing import Literal

from langchain_core.tools import tool
from pydantic import BaseModel, Field

from tools.registry import Tool

CALLS = []


def forecast(city: str, days: int = 1, unit: Literal["c", "f"] = "c") -> dict:
    """The weather forecast for a city.

    Args:
        city: The city the caller asks about.
        days: How many days ahead.
    """
    CALLS.append(threading.current_thread().name)
    return {"city": city, "days": days, "unit": unit, "on": date(2026, 1, 5)}


async def refund_status(refund_id: str) -> str:
    """Whether a refund has been paid out."""
    return f"refund {refund_id} is paid"


class TicketQuery(BaseModel):
    """Find a support ticket."""

    ticket_id: str = Field(description="The ticket number, e.g. T-100.")
    include_history: bool = False


class Ticket(BaseModel):
    ticket_id: str
    state: str
    history: list[str]


def find_ticket(query: TicketQuery) -> Ticket:
    """Look up a support ticket by its number."""
    history = ["opened", "answered"] if query.include_history else []
    return Ticket(ticket_id=query.ticket_id, state="open", history=history)


@tool
def loyalty_points(account: str) -> int:
    """Loyalty points of a customer account."""
    return len(account) * 100


def no_docstring(x: int) -> int:
    return x


def broken(x: int) -> int:
    """Always fails."""
    raise RuntimeError("backend down")


READY_MADE = Tool(
    name="ignored.name",
    description="A ready-made tool.",
    parameters={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    func=lambda n: n + 1,
)

NOT_A_TOOL = 42
'''


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An importable module of sample tools, under a name unique to the test."""
    name = f"sample_tools_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


async def test_a_function_reference_becomes_a_tool(module: str) -> None:
    t = python_tool(f"{module}:forecast", name="weather.forecast")
    assert t.name == "weather.forecast"
    assert t.description == "The weather forecast for a city."
    assert t.parameters["required"] == ["city"]
    props = t.parameters["properties"]
    assert props["city"] == {"type": "string", "description": "The city the caller asks about."}
    assert props["days"]["type"] == "integer" and props["days"]["default"] == 1
    assert props["unit"]["enum"] == ["c", "f"]
    result = await t.ainvoke({"city": "Oslo", "days": 2})
    # Sync functions run in a worker thread; results are stored as JSON values.
    assert result == {"city": "Oslo", "days": 2, "unit": "c", "on": "2026-01-05"}
    calls = load_reference(f"{module}:CALLS")
    assert calls and calls[-1] != threading.main_thread().name


async def test_arguments_are_checked_against_the_derived_schema(module: str) -> None:
    t = python_tool(f"{module}:forecast", name="weather.forecast")
    with pytest.raises(ToolError, match="days"):
        await t.ainvoke({"city": "Oslo", "days": "two"})
    with pytest.raises(ToolError, match="unit"):
        await t.ainvoke({"city": "Oslo", "unit": "kelvin"})


async def test_an_async_function(module: str) -> None:
    t = python_tool(f"{module}:refund_status", name="billing.refund_status")
    assert t.parameters["properties"] == {"refund_id": {"type": "string"}}
    assert await t.ainvoke({"refund_id": "R-1"}) == "refund R-1 is paid"


async def test_a_pydantic_model_parameter_gives_its_fields(module: str) -> None:
    t = python_tool(f"{module}:find_ticket", name="tickets.find")
    assert t.description == "Look up a support ticket by its number."
    assert set(t.parameters["properties"]) == {"ticket_id", "include_history"}
    assert t.parameters["required"] == ["ticket_id"]
    assert await t.ainvoke({"ticket_id": "T-1", "include_history": True}) == {
        "ticket_id": "T-1",
        "state": "open",
        "history": ["opened", "answered"],
    }


async def test_a_langchain_tool_reference(module: str) -> None:
    t = python_tool(f"{module}:loyalty_points", name="accounts.loyalty")
    assert t.name == "accounts.loyalty"
    assert t.description == "Loyalty points of a customer account."
    assert t.parameters["properties"] == {"account": {"type": "string"}}
    assert await t.ainvoke({"account": "ACC-9"}) == 500
    assert t.openai_schema()["function"]["name"] == "accounts__loyalty"


async def test_a_langchain_tool_object() -> None:
    @lc_tool
    def shout(text: str) -> str:
        """Say it louder."""
        return text.upper()

    t = tool_from_object(shout, name="speech.shout")
    assert await t.ainvoke({"text": "hi"}) == "HI"


async def test_a_failing_function_is_a_tool_error(module: str) -> None:
    t = python_tool(f"{module}:broken", name="demo.broken")
    with pytest.raises(ToolError, match="backend down"):
        await t.ainvoke({"x": 1})


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_colon_here", "not a 'module:function' reference"),
        ("surely_missing_module_xyz:fn", "cannot import module 'surely_missing_module_xyz'"),
        ("{module}:nothing", "has no attribute 'nothing'"),
        ("{module}:NOT_A_TOOL", "'int' object is not a tool"),
        ("{module}:no_docstring", "has no docstring"),
    ],
)
def test_bad_references_are_clear_errors(module: str, ref: str, message: str) -> None:
    with pytest.raises(ToolLoadError, match=message):
        python_tool(ref.format(module=module), name="demo.bad")


def test_a_description_can_replace_a_missing_docstring(module: str) -> None:
    t = python_tool(f"{module}:no_docstring", name="demo.plain", description="Echo a number.")
    assert t.description == "Echo a number."


def test_a_function_is_named_after_itself_by_default(module: str) -> None:
    assert tool_from_function(load_reference(f"{module}:forecast")).name == "forecast"


def test_a_ready_made_tool_takes_the_registered_name(module: str) -> None:
    t = tool_from_object(load_reference(f"{module}:READY_MADE"), name="math.increment")
    assert (t.name, t.description) == ("math.increment", "A ready-made tool.")


# --- entry points -----------------------------------------------------------------------------


def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: dict[str, str]) -> str:
    """A distribution on sys.path whose `switchboard.tools` entry points are
    `entries` (name -> attribute of its module)."""
    module = f"sb_plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(MODULE, encoding="utf-8")
    dist = tmp_path / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8"
    )
    lines = "\n".join(f"{name} = {module}:{attr}" for name, attr in entries.items())
    (dist / "entry_points.txt").write_text(f"[switchboard.tools]\n{lines}\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return module


async def test_entry_points_register_functions_langchain_tools_and_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        {
            "plugin.forecast": "forecast",
            "plugin.loyalty": "loyalty_points",
            "plugin.increment": "READY_MADE",
        },
    )
    tools, failures = entry_point_tools()
    assert failures == []
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {"plugin.forecast", "plugin.loyalty", "plugin.increment"}
    assert await by_name["plugin.increment"].ainvoke({"n": 41}) == 42
    assert await by_name["plugin.loyalty"].ainvoke({"account": "AB"}) == 200

    graphs = tmp_path / "graphs"
    graphs.mkdir()
    registry = build_registry(graphs)
    assert {"plugin.forecast", "calendar.book"} <= set(registry.names())


def test_broken_entry_points_are_reported_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path,
        monkeypatch,
        {"plugin.fine": "forecast", "plugin.number": "NOT_A_TOOL", "plugin.gone": "missing"},
    )
    tools, failures = entry_point_tools()
    assert [t.name for t in tools] == ["plugin.fine"]
    reasons = {f.name: f.reason for f in failures}
    assert "'int' object is not a tool" in reasons["plugin.number"]
    assert "AttributeError" in reasons["plugin.gone"]
    graphs = tmp_path / "graphs"
    graphs.mkdir()
    with pytest.raises(ToolConfigError) as failed:
        build_registry(graphs)
    codes = {(d.code, d.file) for d in failed.value.diagnostics}
    assert codes == {("E307", "entry point plugin.number"), ("E307", "entry point plugin.gone")}


def test_an_entry_point_may_not_take_a_builtin_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch, {"calendar.book": "forecast"})
    with pytest.raises(ToolConfigError, match="already taken"):
        build_registry(tmp_path / "nowhere")
