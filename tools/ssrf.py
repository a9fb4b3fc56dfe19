"""Outbound address policy for HTTP tools: no server-side request forgery.

A graph or tools file must not be able to make the server call its own
loopback, the private network, link-local cloud metadata endpoints, multicast
or reserved ranges. The check runs where the socket is opened: `GuardedBackend`
is the httpcore network backend of every HTTP tool client, so it resolves the
host (`loop.getaddrinfo`, which runs in a worker thread), refuses when *any*
resolved address is disallowed, and connects to the very address it checked.
Re-resolving between check and connect (DNS rebinding) is therefore impossible,
redirects and pooled connections go through the same check, and IP literals in
any spelling (`2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]`) are judged by the
address they resolve to, never by their text.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from tools.registry import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host, port -> the addresses to try, in order.
Resolver = Callable[[str, int], Awaitable[list[str]]]

#: NAT64 well-known prefix (RFC 6052): the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(ToolError):
    """An outbound request was refused before connecting: the host resolves to an
    address that HTTP tools may not reach, or the URL is not http(s)."""


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` may not be reached by an HTTP tool (None when it is a public
    unicast address). IPv4 addresses embedded in IPv6 (mapped, 6to4, Teredo,
    NAT64) are judged as the IPv4 address they carry."""
    if isinstance(address, ipaddress.IPv6Address):
        for inner in _embedded_ipv4(address):
            reason = refusal_reason(inner)
            if reason is not None:
                return f"{reason} (embedded in {address})"
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
        ("is_site_local", "a site-local address"),
    )
    for attr, reason in checks:
        if getattr(address, attr, False):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found += list(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to for a TCP connection, in resolver order
    (the lookup runs in the event loop's worker threads)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        addr = str(sockaddr[0])
        if addr not in seen:
            seen.append(addr)
    return seen


class AddressGuard:
    """Resolves hosts and refuses disallowed addresses (unless `allow_private`)."""

    def __init__(self, *, allow_private: bool = False, resolver: Resolver | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolver or resolve_host

    async def checked_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, all allowed; raise `AddressRefused` naming the
        host and the first disallowed address, or `httpcore.ConnectError` when
        the name does not resolve."""
        try:
            addresses = await self._resolve(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host!r}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"host {host!r} resolves to no address")
        if self.allow_private:
            return addresses
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                raise AddressRefused(f"host {host!r} resolves to {text!r}, not an IP") from None
            reason = refusal_reason(address)
            if reason is not None:
                shown = host if host == text else f"{host} ({text})"
                raise AddressRefused(
                    f"refused to connect to {shown}: {reason}; HTTP tools may only reach "
                    "public addresses unless the tool sets allow_private_network: true"
                )
        return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses its guard
    allowed, pinning each connection to the address that was checked."""

    def __init__(
        self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.guard = guard
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.guard.checked_addresses(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # addresses is never empty
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("HTTP tools may not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport (no proxies from the environment, HTTP/1.1) whose
    connections are opened by a `GuardedBackend`."""

    def __init__(
        self,
        guard: AddressGuard,
        *,
        limits: httpx.Limits | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        lim = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=lim)
        # httpx 0.28 cannot take a network backend: replace the pool it built
        # with the same pool on the guarded backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=lim.max_connections,
            max_keepalive_connections=lim.max_keepalive_connections,
            keepalive_expiry=lim.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(guard, backend),
        )


def check_scheme(url: httpx.URL) -> None:
    """Raise `AddressRefused` unless `url` is an http(s) URL with a host."""
    if url.scheme not in ("http", "https"):
        raise AddressRefused(f"refused URL scheme {url.scheme!r}: only http and https")
    if not url.host:
        raise AddressRefused("refused URL without a host")
