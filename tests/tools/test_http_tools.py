"""HTTP tools against a local server (templates, secrets from the environment,
response mapping, timeouts, retries, size and redirect limits), the SSRF guard
without any network access, and function calling through an `llm` node."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import pytest
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from runtime.context import CallContext
from runtime.session import CallSession
from tests.fakes.http_tool_server import HttpToolServer
from tests.runtime.fixtures.calls import compile_graphs, graph, of_type, said
from tools.config import build_registry
from tools.http import ClientPool, HttpToolSpec, default_pool, http_tool, retry_after_seconds
from tools.registry import Tool, ToolError
from tools.ssrf import AddressRefused, refusal_reason


@pytest.fixture(scope="module")
def server() -> Iterator[HttpToolServer]:
    with HttpToolServer() as s:
        yield s


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    p = ClientPool()
    yield p
    await p.aclose()


class Sleeps:
    """An injectable `sleep` that records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make(pool: ClientPool, sleep: Sleeps | None = None, **fields: Any) -> Tool:
    decl: dict[str, Any] = {
        "name": "test.tool",
        "description": "A test tool.",
        "allow_private_network": True,
        **fields,
    }
    return http_tool(HttpToolSpec.model_validate(decl), pool=pool, sleep=sleep or Sleeps())


ORDER_PARAMS = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "qty": {"type": "integer"},
        "note": {"type": "string"},
    },
    "required": ["order_id"],
}


# --- requests and results ---------------------------------------------------------------------


async def test_templates_encode_arguments_and_keep_types(
    server: HttpToolServer, pool: ClientPool
) -> None:
    tool = make(
        pool,
        method="POST",
        url=server.base_url + "/echo/orders/{order_id}",
        parameters=ORDER_PARAMS,
        query={"q": "{order_id}", "n": "{note}", "fixed": 7},
        body={"order": "{order_id}", "qty": "{qty}", "note": "{note}", "text": "Order {order_id}"},
    )
    echoed = await tool.ainvoke({"order_id": "A 1/../x?y=1#z", "qty": 3})
    # The argument stays one path segment: no traversal, query or fragment injection.
    assert echoed["path"] == "/echo/orders/A%201%2F..%2Fx%3Fy%3D1%23z"
    assert echoed["query"] == "q=A+1%2F..%2Fx%3Fy%3D1%23z&fixed=7"  # `note` not given: left out
    assert echoed["json"] == {"order": "A 1/../x?y=1#z", "qty": 3, "text": "Order A 1/../x?y=1#z"}
    assert echoed["method"] == "POST"
    assert echoed["headers"]["content-type"] == "application/json"


async def test_secret_header_comes_from_the_environment(
    server: HttpToolServer, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", "s3cret-value")
    tool = make(
        pool,
        url=server.base_url + "/echo",
        headers={"Authorization": "Bearer {env.ORDERS_TOKEN}", "Accept": "application/json"},
    )
    echoed = await tool.ainvoke({})
    assert echoed["headers"]["authorization"] == "Bearer s3cret-value"
    assert echoed["headers"]["accept"] == "application/json"


async def test_errors_name_the_template_never_the_secret(
    server: HttpToolServer, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", "k-123-very-secret")
    tool = make(pool, url=server.base_url + "/status/404", query={"key": "{env.API_KEY}"})
    with pytest.raises(ToolError) as failed:
        await tool.ainvoke({})
    assert "HTTP 404" in str(failed.value)
    assert "k-123-very-secret" not in str(failed.value)
    assert [r.query for r in server.requests if r.raw_path == "/status/404"][-1] == (
        "key=k-123-very-secret"
    )


async def test_an_argument_cannot_inject_header_lines(
    server: HttpToolServer, pool: ClientPool
) -> None:
    before = len(server.requests)
    tool = make(
        pool,
        url=server.base_url + "/echo",
        parameters=ORDER_PARAMS,
        headers={"X-Order": "{order_id}"},
    )
    with pytest.raises(ToolError, match="line break"):
        await tool.ainvoke({"order_id": "A-1\r\nX-Admin: yes"})
    assert len(server.requests) == before


async def test_missing_environment_variable_is_a_clear_error(
    server: HttpToolServer, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    tool = make(pool, url="{env.NOT_SET_ANYWHERE}/orders/1")
    with pytest.raises(ToolError, match="environment variable NOT_SET_ANYWHERE is not set"):
        await tool.ainvoke({})


async def test_response_mapping_by_pointer_and_dotted_path(
    server: HttpToolServer, pool: ClientPool
) -> None:
    tool = make(
        pool,
        url=server.base_url + "/orders/{order_id}",
        parameters=ORDER_PARAMS,
        response={
            "status": "/status",
            "carrier": "shipment.carrier",
            "eta": "/shipment/eta",
            "first_sku": "/items/0/sku",
            "first_qty": "items.0.qty",
            "missing": "/nothing/here",
        },
    )
    assert await tool.ainvoke({"order_id": "A-1"}) == {
        "status": "shipped",
        "carrier": "UPS",
        "eta": "2026-01-07",
        "first_sku": "MUG-1",
        "first_qty": 2,
        "missing": None,
    }


async def test_unmapped_json_and_text_responses(server: HttpToolServer, pool: ClientPool) -> None:
    whole = await make(pool, url=server.base_url + "/orders/B-2").ainvoke({})
    assert whole["id"] == "B-2" and whole["shipment"]["carrier"] == "UPS"
    assert await make(pool, url=server.base_url + "/text").ainvoke({}) == "plain words"
    mapped = make(pool, url=server.base_url + "/text", response={"x": "/x"})
    with pytest.raises(ToolError, match="not JSON"):
        await mapped.ainvoke({})


async def test_arguments_are_validated_before_any_request(
    server: HttpToolServer, pool: ClientPool
) -> None:
    before = len(server.requests)
    tool = make(pool, url=server.base_url + "/orders/{order_id}", parameters=ORDER_PARAMS)
    with pytest.raises(ToolError, match="order_id"):
        await tool.ainvoke({"qty": 1})
    assert len(server.requests) == before


async def test_timeout_is_a_tool_error_and_not_retried(
    server: HttpToolServer, pool: ClientPool
) -> None:
    before = sum(r.raw_path == "/slow" for r in server.requests)
    # The server holds /slow for 30 s; the tool gives up after 0.3 s.
    tool = make(pool, url=server.base_url + "/slow", timeout_s=0.3, retries=3)
    with pytest.raises(ToolError, match=r"timed out after 0\.3 s"):
        await tool.ainvoke({}, timeout_s=20)
    assert sum(r.raw_path == "/slow" for r in server.requests) == before + 1


async def test_5xx_is_retried_with_jittered_exponential_backoff(
    server: HttpToolServer, pool: ClientPool
) -> None:
    sleeps = Sleeps()
    tool = make(
        pool,
        sleeps,
        url=server.base_url + "/flaky/backoff?failures=2",
        retries=3,
        backoff_s=0.5,
        max_backoff_s=4,
    )
    assert await tool.ainvoke({}) == {"ok": True, "attempt": 3}
    assert server.count("backoff") == 3
    assert len(sleeps.waits) == 2
    for i, wait in enumerate(sleeps.waits):
        assert 0 <= wait <= 0.5 * 2**i  # full jitter within the doubling window


async def test_retries_are_bounded(server: HttpToolServer, pool: ClientPool) -> None:
    sleeps = Sleeps()
    tool = make(pool, sleeps, url=server.base_url + "/flaky/bounded?failures=9", retries=2)
    with pytest.raises(ToolError, match=r"HTTP 503 \(gave up after 3 attempts\)"):
        await tool.ainvoke({})
    assert server.count("bounded") == 3
    assert len(sleeps.waits) == 2


async def test_client_errors_are_not_retried(server: HttpToolServer, pool: ClientPool) -> None:
    sleeps = Sleeps()
    tool = make(pool, sleeps, url=server.base_url + "/flaky/client?failures=5&status=404")
    with pytest.raises(ToolError, match="HTTP 404"):
        await tool.ainvoke({})
    assert server.count("client") == 1
    assert sleeps.waits == []


async def test_429_retry_after_is_honoured(server: HttpToolServer, pool: ClientPool) -> None:
    sleeps = Sleeps()
    tool = make(pool, sleeps, url=server.base_url + "/limited/short?retry_after=2")
    assert await tool.ainvoke({}) == {"ok": True, "attempt": 2}
    assert sleeps.waits == [2.0]


async def test_429_retry_after_beyond_the_bound_fails_at_once(
    server: HttpToolServer, pool: ClientPool
) -> None:
    sleeps = Sleeps()
    tool = make(
        pool, sleeps, url=server.base_url + "/limited/long?retry_after=3600", max_retry_after_s=5
    )
    with pytest.raises(ToolError, match=r"retry after 3600 s.*max_retry_after_s: 5"):
        await tool.ainvoke({})
    assert server.count("long") == 1
    assert sleeps.waits == []


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7") == 7.0
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 31 Dec 2025 00:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


async def test_connection_errors_are_retried(pool: ClientPool) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    tool = make(pool, sleeps, url=f"http://127.0.0.1:{port}/x", retries=2)
    with pytest.raises(ToolError, match=r"cannot connect.*gave up after 3 attempts"):
        await tool.ainvoke({})
    assert len(sleeps.waits) == 2


async def test_response_size_is_bounded(server: HttpToolServer, pool: ClientPool) -> None:
    tool = make(pool, url=server.base_url + "/big?size=5000", max_response_bytes=1000)
    with pytest.raises(ToolError, match=r"larger than max_response_bytes \(1000\)"):
        await tool.ainvoke({})
    small = make(pool, url=server.base_url + "/big?size=10", max_response_bytes=1000)
    assert await small.ainvoke({}) == "x" * 10


async def test_redirects_are_followed_and_bounded(server: HttpToolServer, pool: ClientPool) -> None:
    to_order = make(pool, url=server.base_url + "/redirect?to=/orders/R-9", response={"id": "/id"})
    assert await to_order.ainvoke({}) == {"id": "R-9"}
    loop_url = server.base_url + "/redirect?to=/redirect%3Fto%3D/orders/1"
    with pytest.raises(ToolError, match="more than 1 redirects"):
        await make(pool, url=loop_url, max_redirects=1).ainvoke({})


async def test_a_redirect_to_another_origin_drops_the_declared_headers(
    server: HttpToolServer, pool: ClientPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_TOKEN", "s3cret-value")
    elsewhere = f"http://localhost:{server.port}/echo"
    tool = make(
        pool,
        url=server.base_url + "/redirect?to=" + elsewhere,
        headers={"Authorization": "Bearer {env.ORDERS_TOKEN}"},
    )
    echoed = await tool.ainvoke({})
    assert "authorization" not in echoed["headers"]
    same = make(
        pool,
        url=server.base_url + "/redirect?to=/echo",
        headers={"Authorization": "Bearer {env.ORDERS_TOKEN}"},
    )
    assert (await same.ainvoke({}))["headers"]["authorization"] == "Bearer s3cret-value"


# --- SSRF: refused before connecting ----------------------------------------------------------


class NoNetwork(httpcore.AsyncNetworkBackend):
    """A network backend that records connection attempts and answers each with
    the scripted bytes (or fails the connection when there are none)."""

    def __init__(self, response: bytes | None = None) -> None:
        self.connects: list[tuple[str, int]] = []
        self._response = response

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        if self._response is None:
            raise httpcore.ConnectError("no network in this test")
        return httpcore.AsyncMockStream([self._response])

    async def sleep(self, seconds: float) -> None:
        return None


def fake_dns(table: dict[str, list[list[str]]]) -> Any:
    """A resolver answering from `table` (host -> successive answers; the last
    answer repeats); unknown hosts fail like a DNS miss."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise OSError(f"unknown host {host}") from None
            return [host]
        n = calls.get(host, 0)
        calls[host] = n + 1
        answers = table[host]
        return answers[min(n, len(answers) - 1)]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.8.9.10:8080/x",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://172.16.5.5/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fe80::1]/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://localhost:9/",
    ],
)
async def test_private_and_loopback_addresses_are_refused(url: str) -> None:
    network = NoNetwork()
    pool = ClientPool(backend=network)  # real resolution: IP literals and /etc/hosts only
    tool = make(pool, url=url, allow_private_network=False, retries=0)
    with pytest.raises(AddressRefused, match="refused to connect"):
        await tool.ainvoke({})
    assert network.connects == []
    await pool.aclose()


async def test_every_resolved_address_is_checked() -> None:
    network = NoNetwork()
    dns = fake_dns({"mixed.example": [["93.184.216.34", "10.0.0.7"]]})
    pool = ClientPool(resolver=dns, backend=network)
    tool = make(pool, url="http://mixed.example/", allow_private_network=False, retries=0)
    with pytest.raises(AddressRefused, match=r"mixed\.example \(10\.0\.0\.7\): a private"):
        await tool.ainvoke({})
    assert network.connects == []
    await pool.aclose()


async def test_connections_go_to_the_checked_address_so_rebinding_fails() -> None:
    network = NoNetwork()
    # First lookup public, every later lookup loopback: a DNS rebinding attack.
    dns = fake_dns({"rebind.example": [["93.184.216.34"], ["127.0.0.1"]]})
    pool = ClientPool(resolver=dns, backend=network)
    tool = make(pool, url="http://rebind.example/", allow_private_network=False, retries=0)
    with pytest.raises(ToolError, match="cannot connect"):
        await tool.ainvoke({})
    assert network.connects == [("93.184.216.34", 80)]  # the address checked, not the name
    with pytest.raises(AddressRefused, match="loopback"):
        await tool.ainvoke({})
    assert network.connects == [("93.184.216.34", 80)]
    await pool.aclose()


@pytest.mark.parametrize(
    ("location", "refusal"),
    [
        ("http://10.0.0.1/admin", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("file:///etc/passwd", "scheme 'file'"),
    ],
)
async def test_redirects_to_disallowed_targets_are_refused(location: str, refusal: str) -> None:
    redirect = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
    network = NoNetwork(redirect.encode())
    pool = ClientPool(resolver=fake_dns({"public.example": [["93.184.216.34"]]}), backend=network)
    tool = make(pool, url="http://public.example/start", allow_private_network=False, retries=0)
    with pytest.raises(AddressRefused, match=refusal):
        await tool.ainvoke({})
    assert network.connects == [("93.184.216.34", 80)]
    await pool.aclose()


async def test_non_http_schemes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BASE", "file:///etc")
    network = NoNetwork()
    pool = ClientPool(backend=network)
    with pytest.raises(AddressRefused, match="scheme 'file'"):
        await make(pool, url="{env.BASE}/passwd").ainvoke({})
    assert network.connects == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("100.64.0.1", "not a public address"),
        ("224.0.0.251", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("::", "an unspecified address"),
        ("::ffff:10.0.0.1", "a private address (embedded in ::ffff:a00:1)"),
        ("2002:7f00:1::", "a loopback address (embedded in 2002:7f00:1::)"),
        ("64:ff9b::a9fe:a9fe", "a link-local address (embedded in 64:ff9b::a9fe:a9fe)"),
        ("fc00::1", "a private address"),
    ],
)
def test_refusal_reasons(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


# --- function calling through an llm node -----------------------------------------------------


class ToolCallingFakeModel(FakeMessagesListChatModel):
    """LangChain's scripted fake chat model with tool binding: records the tools
    it is offered and the messages it gets, and streams scripted replies
    (tool calls included) as one chunk."""

    offered: list[list[dict[str, Any]]] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        self.offered.append([convert_to_openai_tool(t) for t in tools])
        return self

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        reply = self._generate(messages, stop=stop, run_manager=run_manager, **kw)
        message = reply.generations[0].message
        assert isinstance(message, AIMessage)
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=message.content,
                tool_call_chunks=[
                    {"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                    for i, c in enumerate(message.tool_calls)
                ],
            )
        )


LLM_GRAPH = """
schema: switchboard/v1
id: shop
name: Shop help desk
start: chat
nodes:
  chat:
    type: llm
    prompt: You are the shop's help desk.
    greeting: Hello, how can I help?
    tools: [orders.status]
    exits:
      done: {description: The caller is helped, next: bye}
  bye: {type: end, text: Goodbye!}
"""


@pytest.fixture
async def shared_pool() -> AsyncIterator[ClientPool]:
    """The process-wide pool declared tools use, closed for this test's loop."""
    yield default_pool()
    await default_pool().aclose()


async def test_an_llm_node_calls_a_declared_http_tool(
    server: HttpToolServer,
    shared_pool: ClientPool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "shop-secret")
    (tmp_path / "tools.yaml").write_text(
        f"""
tools:
  orders.status:
    description: Where an order is.
    parameters:
      type: object
      properties: {{order_id: {{type: string}}}}
      required: [order_id]
    url: "{server.base_url}/orders/{{order_id}}"
    headers: {{Authorization: "Bearer {{env.SHOP_TOKEN}}"}}
    response: {{status: /status, carrier: /shipment/carrier}}
    allow_private_network: true
""",
        encoding="utf-8",
    )
    registry = await asyncio.to_thread(build_registry, tmp_path)
    model = ToolCallingFakeModel(
        responses=[
            AIMessage(
                content="",
                tool_calls=[{"name": "orders__status", "args": {"order_id": "Z-77"}, "id": "c1"}],
            ),
            AIMessage(content="Your order Z-77 has shipped with UPS."),
        ]
    )
    compiled = compile_graphs(graph(LLM_GRAPH))
    context = CallContext(tools=registry, llm_factory=lambda settings: model)
    call = CallSession(compiled, context=context, call_id="llm-http", caller="+15551230001")
    await call.start()
    events = await call.send("Where is my order Z-77?")

    assert said(events) == ["Your order Z-77 has shipped with UPS."]
    offered = [t["function"]["name"] for t in model.offered[0]]
    assert offered == ["orders__status", "exit_done"]
    [record] = of_type(events, "tool")
    assert record["name"] == "orders.status"
    assert record["args"] == {"order_id": "Z-77"}
    assert record.get("error") is None
    hits = [r for r in server.requests if r.raw_path == "/orders/Z-77"]
    assert len(hits) == 1 and hits[0].headers["authorization"] == "Bearer shop-secret"
    # The mapped result went back to the model as the tool's answer.
    [answer] = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
    assert json.loads(str(answer.content)) == {"status": "shipped", "carrier": "UPS"}
