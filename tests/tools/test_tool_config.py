"""Tools files: loading with file:line diagnostics, the registry a call uses
(built-ins + declared + entry points), and the wiring into validation, the
CLI and conversation tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runtime.cli import app
from runtime.convtest import default_tools_factory, run_file
from schemas.catalog import GraphCatalog
from schemas.diagnostics import Diagnostic
from schemas.validate import known_tools, validate_file
from tests.fakes.http_tool_server import HttpToolServer
from tests.runtime.fixtures.calls import fixed_clock
from tools.builtin import builtin_tool_names
from tools.config import (
    ToolConfigError,
    build_registry,
    known_tool_names,
    load_tool_declarations,
    load_tool_file,
    load_tool_text,
    tools_diagnostics,
)
from tools.http import default_pool
from tools.store import DemoStore

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

GOOD = """\
schema: switchboard/tools/v1
tools:
  orders.status:
    description: Where an order is.
    parameters:
      type: object
      properties: {order_id: {type: string}}
      required: [order_id]
    url: "https://shop.example.com/orders/{order_id}"
    headers: {Authorization: "Bearer {env.SHOP_TOKEN}"}
    response: {status: /status}
  text.upper:
    python: operator:methodcaller
    description: placeholder replaced below
"""

PY_MODULE = '''
def shout(text: str) -> str:
    """Say the text louder."""
    return text.upper()
'''


@pytest.fixture
def py_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"cfg_tools_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PY_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def good_text(py_module: str) -> str:
    return GOOD.replace(
        "    python: operator:methodcaller\n    description: placeholder replaced below\n",
        f"    python: {py_module}:shout\n",
    )


def where(d: Diagnostic) -> tuple[str, int, str]:
    return d.code, d.line, d.pointer


# --- loading ----------------------------------------------------------------------------------


def test_a_valid_file_declares_http_and_python_tools(tmp_path: Path, py_module: str) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(good_text(py_module), encoding="utf-8")
    tools = {t.name: t for t in load_tool_declarations(path)}
    assert set(tools) == {"orders.status", "text.upper"}
    assert tools["orders.status"].parameters["required"] == ["order_id"]
    assert tools["text.upper"].description == "Say the text louder."


async def test_a_declared_python_tool_runs(tmp_path: Path, py_module: str) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(good_text(py_module), encoding="utf-8")
    upper = {t.name: t for t in load_tool_declarations(path)}["text.upper"]
    assert await upper.ainvoke({"text": "hello"}) == "HELLO"


# Each defect on its own line; the expected (code, line, pointer) follow.
DEFECTS = """\
tools:
  orders.a:
    description: unknown placeholder
    url: "https://api.example.com/{order}"
  orders.b:
    description: literal secret
    url: "https://api.example.com/b"
    headers: {Authorization: "Bearer abc123"}
  orders.c:
    description: argument in a credential header
    parameters: {type: object, properties: {user: {type: string}}}
    url: "https://api.example.com/c"
    headers: {X-Api-Key: "{user}"}
  orders.d:
    description: bad parameter schema
    parameters: {type: object, properties: {n: {type: integr}}}
    url: "https://api.example.com/d"
  orders.e:
    description: not http
    url: "gopher://api.example.com/e"
  calendar.book:
    description: taken
    url: "https://api.example.com/f"
  orders.g:
    python: surely_not_a_module_abc:fn
  orders.ok:
    description: fine
    url: "{env.ORDERS_URL}/ok"
    headers: {Authorization: "Token {env.ORDERS_TOKEN}", X-Request: "{env.REQ}"}
"""


def test_declaration_errors_name_line_and_field() -> None:
    loaded = load_tool_text(DEFECTS, "tools.yaml")
    assert [where(d) for d in loaded.diagnostics] == [
        ("E301", 4, "/tools/orders.a/url"),
        ("E302", 8, "/tools/orders.b/headers/Authorization"),
        ("E302", 13, "/tools/orders.c/headers/X-Api-Key"),
        ("E304", 16, "/tools/orders.d/parameters"),
        ("E306", 20, "/tools/orders.e/url"),
        ("E305", 21, "/tools/calendar.book"),
        ("E303", 25, "/tools/orders.g/python"),
    ]
    messages = {d.code: d.message for d in loaded.diagnostics}
    assert "{order} names no parameter" in messages["E301"]
    assert "environment variables" in messages["E302"]
    assert "cannot import module 'surely_not_a_module_abc'" in messages["E303"]
    assert [t.name for t in loaded.tools] == ["orders.ok"]  # the sound one still loads
    assert all(d.file == "tools.yaml" for d in loaded.diagnostics)


SCHEMA_DEFECTS = """\
schema: switchboard/tools/v1
tools:
  Bad-Name:
    description: x
    url: "https://a.example.com"
  orders.x:
    descripton: typo
    url: "https://a.example.com"
  orders.y:
    description: y
    url: "https://a.example.com"
    method: FETCH
    timeout_s: 0
  orders.z:
    python: not a reference
"""


def test_schema_errors_are_explained_with_lines() -> None:
    loaded = load_tool_text(SCHEMA_DEFECTS, "tools.yaml")
    found = {(d.code, d.line): d.message for d in loaded.diagnostics}
    assert "tool name 'Bad-Name' is not valid" in found[("E113", 3)]
    assert "field 'description' is required" in found[("E110", 6)]
    assert "unknown field 'descripton' (did you mean 'description'?)" in found[("E112", 7)]
    assert "must be one of: GET, POST, PUT, PATCH, DELETE" in found[("E113", 12)]
    assert "must be greater than 0" in found[("E113", 13)]
    assert "'module:function' reference" in found[("E113", 15)]
    assert loaded.tools == []


@pytest.mark.parametrize(
    ("text", "code", "words"),
    [
        ("tools: [a, b", "E101", "YAML syntax error"),
        ("- just a list", "E102", ""),
        ("tools:\n  a.b: {description: x, url: 'https://x.example.com'}\n  a.b: {}\n", "E103", ""),
        ("tools: {a: 1}", "E111", "must be a mapping"),
    ],
)
def test_broken_documents_are_diagnostics_not_exceptions(text: str, code: str, words: str) -> None:
    loaded = load_tool_text(text, "tools.yaml")
    assert loaded.diagnostics and loaded.diagnostics[0].code == code
    assert words in loaded.diagnostics[0].message
    assert "graph file" not in loaded.diagnostics[0].message


def test_unreadable_file_and_error_formatting(tmp_path: Path) -> None:
    assert load_tool_file(tmp_path / "missing.yaml").diagnostics[0].code == "E100"
    path = tmp_path / "tools.yaml"
    path.write_text(DEFECTS, encoding="utf-8")
    with pytest.raises(ToolConfigError) as failed:
        load_tool_declarations(path)
    assert str(failed.value).startswith(f"{path}:4:10: error E301")
    assert "(+6 more)" in str(failed.value)


def test_the_example_tools_file_is_valid() -> None:
    tools = load_tool_declarations(REPO / "graphs" / "tools.yaml")
    assert [t.name for t in tools] == ["orders.status"]
    assert "orders.status" in known_tools(REPO / "graphs")


# --- the registry -----------------------------------------------------------------------------


async def test_build_registry_combines_builtins_and_declared_tools(
    tmp_path: Path, py_module: str
) -> None:
    (tmp_path / "tools.yaml").write_text(good_text(py_module), encoding="utf-8")
    store = DemoStore(clock=fixed_clock)
    registry = build_registry(tmp_path, store=store)
    assert set(registry.names()) == {*builtin_tool_names(), "orders.status", "text.upper"}
    # Built-ins work on the store given.
    ticket = await registry.get("tickets.create").ainvoke({"summary": "Router keeps rebooting"})
    assert store.tickets[ticket["ticket_id"]].summary == "Router keeps rebooting"
    assert build_registry(tmp_path / "no-tools-here").names() == builtin_tool_names()


def test_a_broken_file_stops_the_registry_but_not_the_names(tmp_path: Path) -> None:
    (tmp_path / "tools.yaml").write_text(DEFECTS, encoding="utf-8")
    with pytest.raises(ToolConfigError) as failed:
        build_registry(tmp_path)
    assert len(failed.value.diagnostics) == 7
    assert "orders.ok" in known_tool_names(tmp_path)
    assert "orders.a" not in known_tool_names(tmp_path)
    assert len(tools_diagnostics(tmp_path)) == 7


def test_edits_to_the_tools_file_are_picked_up(tmp_path: Path, py_module: str) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(good_text(py_module), encoding="utf-8")
    assert "text.upper" in known_tool_names(tmp_path)
    path.write_text(good_text(py_module).replace("text.upper", "text.louder"), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    names = known_tool_names(tmp_path)
    assert "text.louder" in names and "text.upper" not in names


# --- wiring -----------------------------------------------------------------------------------

GRAPH = """\
schema: switchboard/v1
id: shop
name: Shop
start: lookup
nodes:
  lookup:
    type: tool
    tool: {tool}
    args: {{order_id: A-1}}
    result: order
    next: done
    on_error: sorry
  done: {{type: end, text: "Your order is {{order.status}}."}}
  sorry: {{type: end, text: "Sorry, I cannot see your order right now."}}
"""


def test_validation_knows_declared_tools(tmp_path: Path, py_module: str) -> None:
    (tmp_path / "tools.yaml").write_text(good_text(py_module), encoding="utf-8")
    (tmp_path / "shop.yaml").write_text(GRAPH.format(tool="orders.status"), encoding="utf-8")
    (tmp_path / "typo.yaml").write_text(GRAPH.format(tool="orders.statos"), encoding="utf-8")
    assert [d.code for d in validate_file(tmp_path / "shop.yaml").diagnostics] == []
    typo = [d for d in validate_file(tmp_path / "typo.yaml").diagnostics if d.code == "E208"]
    assert len(typo) == 1 and "orders.status" in typo[0].message
    # The tools file is not a graph to the catalogue.
    assert [p.name for p in GraphCatalog(tmp_path).files()] == ["shop.yaml", "typo.yaml"]


def test_cli_validate_checks_the_tools_file_too(tmp_path: Path, py_module: str) -> None:
    (tmp_path / "shop.yaml").write_text(GRAPH.format(tool="orders.ok"), encoding="utf-8")
    (tmp_path / "tools.yaml").write_text(DEFECTS, encoding="utf-8")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'tools.yaml'}:8:30: error E302" in result.stdout
    assert "2 file(s) checked: invalid (7 errors" in result.stdout
    (tmp_path / "shop.yaml").write_text(GRAPH.format(tool="orders.status"), encoding="utf-8")
    (tmp_path / "tools.yaml").write_text(good_text(py_module), encoding="utf-8")
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 0, result.stdout
    assert "2 file(s) checked: valid (0 errors" in result.stdout


def test_cli_chat_reports_a_broken_tools_file_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(GRAPH.format(tool="calendar.book"), encoding="utf-8")
    (tmp_path / "tools.yaml").write_text(DEFECTS, encoding="utf-8")
    result = runner.invoke(app, ["chat", str(tmp_path / "shop.yaml")], input="")
    assert result.exit_code == 1
    assert "E302" in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with HttpToolServer() as s:
        yield s


@pytest.fixture
async def shared_pool() -> AsyncIterator[None]:
    yield
    await default_pool().aclose()


async def test_conversation_tests_call_declared_tools(
    tmp_path: Path, server: HttpToolServer, shared_pool: None
) -> None:
    (tmp_path / "tools.yaml").write_text(
        f"""
tools:
  orders.status:
    description: Where an order is.
    parameters: {{type: object, properties: {{order_id: {{type: string}}}}}}
    url: "{server.base_url}/orders/{{order_id}}"
    response: {{status: /status}}
    allow_private_network: true
""",
        encoding="utf-8",
    )
    (tmp_path / "shop.yaml").write_text(GRAPH.format(tool="orders.status"), encoding="utf-8")
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "shop.yaml").write_text(
        """
graph: ../shop.yaml
cases:
  - name: order status from the shop's service
    turns:
      - tool: {name: orders.status, args: {order_id: A-1}}
        agent: Your order is shipped.
        outcome: completed
""",
        encoding="utf-8",
    )
    [result] = await run_file(tests / "shop.yaml")
    assert result.passed, result.failures
    assert [r.raw_path for r in server.requests][-1] == "/orders/A-1"
    registry = default_tools_factory(fixed_clock, tmp_path)
    assert "orders.status" in registry
