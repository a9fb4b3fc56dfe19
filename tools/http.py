"""HTTP tools: a declared request (method, URL/query/header/body templates,
response mapping) turned into a registry `Tool`.

Templates use the graph language's `{name}` placeholders and never execute
code: `{param}` (or a dotted `{param.field}`) is an argument, `{env.NAME}` an
environment variable. Argument values are percent-encoded in the URL (a value
can never add a path segment, query or host); a query or body value that is a
lone placeholder keeps the argument's JSON type, and is left out when the
argument was not given. Secrets live only in environment variables: they are
read at call time and never appear in errors or logs (errors name the URL
template, not the URL, and response snippets are redacted).

Each attempt is bounded by `timeout_s`. Connection failures, 5xx and 429 are
retried `retries` times with full-jitter exponential backoff; a `Retry-After`
up to `max_retry_after_s` is honoured and a longer one fails at once. Redirects
are followed by hand (at most `max_redirects`), each hop through the same
address guard; declared headers are dropped when a redirect leaves the origin.
Bodies larger than `max_response_bytes` are refused. Every client comes from a
`ClientPool` whose connections are opened by `tools.ssrf.GuardedBackend`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

import httpcore
import httpx
import jsonpointer
import tenacity
from pydantic import BaseModel, ConfigDict, Field

from runtime.templates import PLACEHOLDER, lookup
from tools.registry import Tool, ToolError
from tools.ssrf import AddressGuard, AddressRefused, GuardedTransport, Resolver, check_scheme

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

#: Header names whose values are credentials: only `{env.NAME}` may fill them.
SECRET_HEADER = re.compile(r"auth|token|key|secret|cookie|session|passw|signature", re.I)
#: What a secret header may say besides its placeholders: an auth scheme word.
_SCHEME_ONLY = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*\s+)?")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REDIRECTS = {301, 302, 303, 307, 308}
_MISSING = object()
_USER_AGENT = "switchboard-http-tool/1"


class HttpToolSpec(BaseModel):
    """One declared HTTP tool (see the module docstring for the semantics)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    body: Any = None
    response: dict[str, str] | None = None
    timeout_s: float = Field(5.0, gt=0, le=120)
    retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.25, ge=0, le=30)
    max_backoff_s: float = Field(4.0, ge=0, le=60)
    max_retry_after_s: float = Field(5.0, ge=0, le=120)
    max_response_bytes: int = Field(1_000_000, ge=1, le=50_000_000)
    max_redirects: int = Field(3, ge=0, le=10)
    allow_private_network: bool = False


# --- static checks --------------------------------------------------------------------------


def spec_problems(spec: HttpToolSpec) -> list[tuple[str, tuple[str, ...], str]]:
    """Problems a declaration has before any call: (code, pointer tokens under
    the tool, message). E301 a placeholder names no parameter, E302 a secret
    header holds literal text or an argument, E306 the URL is not http(s)."""
    props = set((spec.parameters.get("properties") or {}).keys())
    found: list[tuple[str, tuple[str, ...], str]] = []

    def names(where: tuple[str, ...], template: Any) -> None:
        for m in _placeholders(template):
            head, _, rest = m.partition(".")
            if head == "env":
                if not _ENV_NAME.fullmatch(rest):
                    found.append(("E301", where, f"{{{m}}}: expected {{env.NAME}}"))
            elif head not in props:
                known = ", ".join(sorted(props)) or "none"
                found.append(
                    ("E301", where, f"{{{m}}} names no parameter of the tool (known: {known})")
                )

    names(("url",), spec.url)
    for key, value in spec.headers.items():
        names(("headers", key), value)
        if SECRET_HEADER.search(key):
            args = [m for m in _placeholders(value) if not m.startswith("env.")]
            literal = PLACEHOLDER.sub("", value)
            if args or not _SCHEME_ONLY.fullmatch(literal) or "{env." not in value:
                found.append(
                    (
                        "E302",
                        ("headers", key),
                        f"header {key!r} carries a credential: its value must come only "
                        "from environment variables, e.g. 'Bearer {env.API_TOKEN}'",
                    )
                )
    for key, value in spec.query.items():
        names(("query", key), value)
    if spec.body is not None:
        names(("body",), spec.body)
    probe = PLACEHOLDER.sub(lambda m: "x" if m.group(1) else m.group(0), spec.url)
    if not spec.url.startswith("{env."):
        try:
            check_scheme(httpx.URL(probe))
        except (ToolError, httpx.InvalidURL) as exc:
            found.append(("E306", ("url",), f"url {spec.url!r}: {exc}"))
    return found


def _placeholders(value: Any) -> list[str]:
    if isinstance(value, str):
        return [m.group(1) for m in PLACEHOLDER.finditer(value) if m.group(1)]
    if isinstance(value, list):
        return [p for v in value for p in _placeholders(v)]
    if isinstance(value, dict):
        return [p for v in value.values() for p in _placeholders(v)]
    return []


# --- rendering ------------------------------------------------------------------------------


class _Render:
    """Renders one call's templates, remembering the secrets it read."""

    def __init__(self, tool: str, args: Mapping[str, Any]) -> None:
        self.tool = tool
        self.args = args
        self.secrets: set[str] = set()

    def value(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head != "env":
            return lookup(self.args, path)
        found = os.environ.get(rest)
        if found is None:
            raise ToolError(f"{self.tool}: environment variable {rest} is not set")
        if found:
            self.secrets.add(found)
        return found

    def text(self, template: str, *, encode: bool = False) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(0) in ("{{", "}}"):
                return m.group(0)[0]
            raw = _as_text(self.value(m.group(1)))
            return quote(raw, safe="") if encode and not m.group(1).startswith("env.") else raw

        return PLACEHOLDER.sub(sub, template)

    def json(self, template: Any) -> Any:
        """A JSON value; a lone placeholder keeps its type (missing -> `_MISSING`)."""
        if isinstance(template, str):
            m = PLACEHOLDER.fullmatch(template)
            if m and m.group(1):
                found = self.value(m.group(1))
                return _MISSING if found is None else found
            return self.text(template)
        if isinstance(template, list):
            return [v for v in (self.json(t) for t in template) if v is not _MISSING]
        if isinstance(template, dict):
            out = {k: self.json(v) for k, v in template.items()}
            return {k: v for k, v in out.items() if v is not _MISSING}
        return template

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- clients --------------------------------------------------------------------------------


class ClientPool:
    """Shared httpx clients: one per event loop and network policy (a client's
    connections belong to the loop that opened them). Clients of closed loops
    are dropped. `resolver` and `backend` replace DNS and sockets in tests."""

    def __init__(
        self,
        *,
        resolver: Resolver | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._backend = backend
        self._lock = threading.Lock()
        self._clients: dict[tuple[int, bool], tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]]
        self._clients = {}

    def client(self, *, allow_private: bool) -> httpx.AsyncClient:
        """The running loop's client for this policy (made on first use)."""
        loop = asyncio.get_running_loop()
        key = (id(loop), allow_private)
        with self._lock:
            for k in [k for k, (lp, _) in self._clients.items() if lp.is_closed()]:
                del self._clients[k]
            entry = self._clients.get(key)
            if entry is None or entry[0] is not loop:
                guard = AddressGuard(allow_private=allow_private, resolver=self._resolver)
                client = httpx.AsyncClient(
                    transport=GuardedTransport(guard, backend=self._backend),
                    follow_redirects=False,
                    trust_env=False,
                    headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
                )
                entry = (loop, client)
                self._clients[key] = entry
            return entry[1]

    async def aclose(self) -> None:
        """Close the running loop's clients."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = [k for k, (lp, _) in self._clients.items() if lp is loop]
            clients = [self._clients.pop(k)[1] for k in mine]
        for c in clients:
            await c.aclose()


class RedactUrls(logging.Filter):
    """Masks query values and user info of URLs in httpx's request log lines
    (`HTTP Request: GET <url> ...`): a query parameter may carry a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                _redacted_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def _redacted_url(url: httpx.URL) -> httpx.URL:
    params = [(k, "REDACTED") for k, _ in url.params.multi_items()]
    return url.copy_with(userinfo=b"", params=params) if params or url.userinfo else url


def _install_redaction() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, RedactUrls) for f in httpx_log.filters):
        httpx_log.addFilter(RedactUrls())


_install_redaction()
_DEFAULT_POOL = ClientPool()


def default_pool() -> ClientPool:
    """The process-wide client pool every HTTP tool uses unless given another."""
    return _DEFAULT_POOL


# --- calling --------------------------------------------------------------------------------


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpTool:
    """The implementation behind one HTTP tool's `Tool.func`."""

    def __init__(
        self, spec: HttpToolSpec, *, pool: ClientPool | None = None, sleep: Sleep | None = None
    ) -> None:
        self.spec = spec
        self._pool = pool
        self._sleep = sleep or asyncio.sleep
        self._where = f"{spec.method} {spec.url}"

    async def call(self, **args: Any) -> Any:
        """Send the request (retrying as declared) and return the mapped result;
        raise `ToolError` on refusal, timeout, HTTP error or a bad response."""
        r = _Render(self.spec.name, args)
        try:
            url = httpx.URL(r.text(self.spec.url, encode=True))
            check_scheme(url)
        except httpx.InvalidURL as exc:
            raise ToolError(
                f"{self.spec.name}: {self.spec.url} gives a bad URL: {r.redact(str(exc))}"
            ) from None
        except AddressRefused as exc:
            raise AddressRefused(f"{self.spec.name}: {exc}") from None
        headers = {k: r.text(v) for k, v in self.spec.headers.items()}
        for k, v in headers.items():
            if any(ch in v for ch in "\r\n\0"):
                raise ToolError(f"{self.spec.name}: header {k!r} would contain a line break")
        params = self._query(r)
        content: bytes | None = None
        if self.spec.body is not None:
            content = json.dumps(r.json(self.spec.body), ensure_ascii=False).encode()
            headers.setdefault("Content-Type", "application/json")
        target = url.copy_merge_params(params) if params else url
        started = time.perf_counter()
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.spec.retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        status, body = 0, b""
        try:
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    status, body = await self._attempt(r, target, headers, content)
        except _Retryable as exc:
            tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
            raise ToolError(r.redact(f"{self.spec.name}: {exc} (gave up after {tries})")) from None
        log.debug(
            "tool %s: %s -> %s in %.0f ms (%d attempts)",
            self.spec.name,
            self._where,
            status,
            (time.perf_counter() - started) * 1000,
            attempts,
        )
        return self._result(body, r)

    def _query(self, r: _Render) -> dict[str, str | list[str]]:
        params: dict[str, str | list[str]] = {}
        for key, template in self.spec.query.items():
            value = r.json(template)
            if value is _MISSING or value is None:
                continue
            params[key] = (
                [_as_text(v) for v in value] if isinstance(value, list) else _as_text(value)
            )
        return params

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        backoff = tenacity.wait_random_exponential(
            multiplier=self.spec.backoff_s, max=self.spec.max_backoff_s
        )
        return float(backoff(state))

    async def _attempt(
        self, r: _Render, url: httpx.URL, headers: dict[str, str], content: bytes | None
    ) -> tuple[int, bytes]:
        client = (self._pool or default_pool()).client(
            allow_private=self.spec.allow_private_network
        )
        method = self.spec.method
        timeout = httpx.Timeout(self.spec.timeout_s)
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                for _hop in range(self.spec.max_redirects + 1):
                    check_scheme(url)
                    request = client.build_request(
                        method, url, headers=headers, content=content, timeout=timeout
                    )
                    response = await client.send(request, stream=True)
                    try:
                        if response.status_code in _REDIRECTS and "location" in response.headers:
                            target = url.join(response.headers["location"])
                            if (target.scheme, target.host, target.port) != (
                                url.scheme,
                                url.host,
                                url.port,
                            ):
                                # declared headers may carry secrets
                                headers = {
                                    k: v for k, v in headers.items() if k.lower() == "content-type"
                                }
                            if response.status_code == 303 or (
                                response.status_code in (301, 302) and method == "POST"
                            ):
                                method, content = "GET", None
                            url = target
                            continue
                        return response.status_code, await self._checked_body(response, r)
                    finally:
                        await response.aclose()
        except AddressRefused as exc:
            raise AddressRefused(f"{self.spec.name}: {exc}") from None
        except TimeoutError:
            raise ToolError(
                f"{self.spec.name}: {self._where} timed out after {self.spec.timeout_s:g} s"
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Retryable(f"cannot connect for {self._where}: {r.redact(str(exc))}") from exc
        except httpx.TimeoutException:
            raise ToolError(
                f"{self.spec.name}: {self._where} timed out after {self.spec.timeout_s:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(
                f"{self.spec.name}: {self._where} failed: {type(exc).__name__}: "
                f"{r.redact(str(exc))}"
            ) from None
        raise ToolError(
            f"{self.spec.name}: {self._where}: more than {self.spec.max_redirects} redirects"
        )

    async def _checked_body(self, response: httpx.Response, r: _Render) -> bytes:
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("retry-after"))
            if wait is not None and wait > self.spec.max_retry_after_s:
                raise ToolError(
                    f"{self.spec.name}: {self._where} answered HTTP {status} asking to retry "
                    f"after {wait:g} s, longer than this tool waits "
                    f"(max_retry_after_s: {self.spec.max_retry_after_s:g})"
                )
            raise _Retryable(f"{self._where} answered HTTP {status}", wait)
        body = await self._read_limited(response)
        if status >= 400:
            snippet = body[:200].decode("utf-8", "replace").strip()
            detail = f": {r.redact(snippet)}" if snippet else ""
            raise ToolError(f"{self.spec.name}: {self._where} answered HTTP {status}{detail}")
        return body

    async def _read_limited(self, response: httpx.Response) -> bytes:
        limit = self.spec.max_response_bytes
        declared = response.headers.get("content-length", "")
        too_big = ToolError(
            f"{self.spec.name}: the response of {self._where} is larger than "
            f"max_response_bytes ({limit})"
        )
        if declared.isdigit() and int(declared) > limit:
            raise too_big
        buf = bytearray()
        async for chunk in response.aiter_bytes():
            buf += chunk
            if len(buf) > limit:
                raise too_big
        return bytes(buf)

    def _result(self, body: bytes, r: _Render) -> Any:
        try:
            doc = json.loads(body) if body.strip() else None
        except ValueError:
            if self.spec.response is not None:
                raise ToolError(
                    f"{self.spec.name}: the response of {self._where} is not JSON"
                ) from None
            return body.decode("utf-8", "replace")
        if self.spec.response is None:
            return doc
        return {field: _pick(doc, path) for field, path in self.spec.response.items()}


def _pick(doc: Any, path: str) -> Any:
    """A JSON pointer (`/a/0/b`) or a dotted path (`a.0.b`); missing -> None."""
    if path == "" or path.startswith("/"):
        return jsonpointer.resolve_pointer(doc, path, None)
    return lookup({"doc": doc}, f"doc.{path}")


def http_tool(
    spec: HttpToolSpec, *, pool: ClientPool | None = None, sleep: Sleep | None = None
) -> Tool:
    """A registry `Tool` calling `spec` (checked with `spec_problems` first:
    raise `ToolError` listing them)."""
    problems = spec_problems(spec)
    if problems:
        raise ToolError(
            f"HTTP tool {spec.name}: "
            + "; ".join(f"{c} {'/'.join(p)}: {m}" for c, p, m in problems)
        )
    runner = HttpTool(spec, pool=pool, sleep=sleep)
    return Tool(
        name=spec.name, description=spec.description, parameters=spec.parameters, func=runner.call
    )
