"""Tool registry: named, described, schema-checked callables shared by `tool`
nodes (called directly) and `llm` nodes (offered through function calling)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

ToolFunc = Callable[..., Any] | Callable[..., Awaitable[Any]]


class ToolError(Exception):
    """A tool call failed: bad arguments, a timeout or an error inside the tool."""


@dataclass(frozen=True)
class Tool:
    """A callable with a name, a description and JSON-Schema parameters.

    `func` may be sync (run in a worker thread) or async; it receives the
    validated arguments as keyword arguments and returns a JSON-serialisable
    result.
    """

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    func: ToolFunc | None = None

    def validate(self, args: dict[str, Any]) -> None:
        """Raise `ToolError` naming the field when `args` break the schema."""
        errors = sorted(
            jsonschema.Draft202012Validator(self.parameters).iter_errors(args),
            key=lambda e: list(e.absolute_path),
        )
        if errors:
            msgs = []
            for e in errors:
                where = "/".join(str(p) for p in e.absolute_path) or "(arguments)"
                msgs.append(f"{where}: {e.message}")
            raise ToolError(f"invalid arguments for {self.name}: " + "; ".join(msgs))

    async def ainvoke(self, args: dict[str, Any], *, timeout_s: float = 10.0) -> Any:
        """Validate and run; raise `ToolError` on bad arguments, timeout or failure."""
        if self.func is None:
            raise ToolError(f"tool {self.name} has no implementation")
        self.validate(args)
        try:
            if inspect.iscoroutinefunction(self.func):
                coro = self.func(**args)
            else:
                coro = asyncio.to_thread(self.func, **args)
            return await asyncio.wait_for(coro, timeout_s)
        except TimeoutError as exc:
            raise ToolError(f"{self.name} timed out after {timeout_s:g} s") from exc
        except ToolError:
            raise
        except Exception as exc:  # a tool's own failure is data for the graph
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an OpenAI function-calling definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name.replace(".", "__"),
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class ToolRegistry:
    """Tools by name. Names are dotted (`calendar.book`)."""

    def __init__(self, tools: Iterable[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> Tool:
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ToolError(f"unknown tool {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def by_function_name(self, fname: str) -> Tool:
        """Look up by the OpenAI function name (dots become `__`)."""
        return self.get(fname.replace("__", "."))
