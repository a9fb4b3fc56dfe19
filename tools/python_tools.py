"""Python tools: functions, LangChain tools and entry-point plugins as registry
`Tool`s.

- A function becomes a LangChain `StructuredTool` first, so its parameters come
  from its signature and type hints (pydantic types included), its description
  from its docstring, and Google-style `Args:` sections describe each
  parameter. A function whose only parameter is a pydantic model takes that
  model's fields as its parameters.
- A LangChain `BaseTool` (what `@tool` makes) keeps its own argument schema
  (`tool_call_schema`: injected arguments are not offered) and runs through
  `ainvoke`, which runs sync tools in a worker thread.
- `module:attribute` references are imported with importlib.
- Installed packages register tools under the entry point group
  `switchboard.tools`; the entry point's name is the tool's name and its object
  is a `Tool`, a `BaseTool` or a function.

Results are converted to JSON-compatible values (pydantic models, dataclasses,
dates) so they can be stored with the call.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable
from importlib import metadata
from typing import Any, get_type_hints

from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from tools.registry import Tool, ToolError

ENTRY_POINT_GROUP = "switchboard.tools"


class ToolLoadError(ToolError):
    """A Python tool reference or entry point cannot be turned into a tool."""


def load_reference(ref: str) -> Any:
    """The object named by `module:attribute` (the attribute may be dotted);
    raise `ToolLoadError` saying what is wrong with the reference."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise ToolLoadError(f"{ref!r} is not a 'module:function' reference")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of user code is a config error
        raise ToolLoadError(
            f"cannot import module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ToolLoadError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def tool_from_base_tool(
    base: BaseTool, *, name: str | None = None, description: str | None = None
) -> Tool:
    """A registry tool that runs `base` with `ainvoke` (named `name`, default the
    LangChain tool's own name)."""
    schema = convert_to_openai_tool(base)["function"]
    parameters = schema.get("parameters") or {"type": "object", "properties": {}}

    async def run(**kwargs: Any) -> Any:
        return to_jsonable_python(await base.ainvoke(kwargs), fallback=str)

    return Tool(
        name=name or base.name,
        description=description or schema.get("description") or base.description,
        parameters=parameters,
        func=run,
    )


def tool_from_function(
    func: Callable[..., Any], *, name: str | None = None, description: str | None = None
) -> Tool:
    """A registry tool calling `func` (sync or async; see the module docstring
    for parameters and description). Raise `ToolLoadError` when `func` has no
    docstring and no `description` is given, or its signature has no schema."""
    fname = getattr(func, "__name__", type(func).__name__)
    doc = description or inspect.getdoc(func)
    if not doc:
        raise ToolLoadError(
            f"function {fname!r} has no docstring: the model reads it to decide when to call "
            "the tool, so add one (or give the tool a description)"
        )
    is_async = inspect.iscoroutinefunction(func)
    model = _single_model_parameter(func)
    try:
        if model is not None:
            base = _model_tool(func, model, fname, doc, is_async)
        else:
            base = StructuredTool.from_function(
                func=None if is_async else func,
                coroutine=func if is_async else None,
                name=fname,
                description=description,
                parse_docstring=description is None,
                error_on_invalid_docstring=False,
            )
    except (TypeError, ValueError, NameError) as exc:
        raise ToolLoadError(f"function {fname!r}: {exc}") from exc
    return tool_from_base_tool(base, name=name or fname, description=description)


def _single_model_parameter(func: Callable[..., Any]) -> type[BaseModel] | None:
    try:
        params = list(inspect.signature(func).parameters.values())
        hints = get_type_hints(func)
    except (TypeError, ValueError, NameError):
        return None
    if len(params) != 1:
        return None
    hint = hints.get(params[0].name)
    return hint if isinstance(hint, type) and issubclass(hint, BaseModel) else None


def _model_tool(
    func: Callable[..., Any], model: type[BaseModel], fname: str, doc: str, is_async: bool
) -> BaseTool:
    """A StructuredTool whose arguments are `model`'s fields, calling `func(model)`."""
    first = inspect.cleandoc(doc)
    if is_async:

        async def acall(**kwargs: Any) -> Any:
            return await func(model.model_validate(kwargs))

        return StructuredTool.from_function(
            coroutine=acall, name=fname, description=first, args_schema=model
        )

    def call(**kwargs: Any) -> Any:
        return func(model.model_validate(kwargs))

    return StructuredTool.from_function(func=call, name=fname, description=first, args_schema=model)


def tool_from_object(obj: Any, *, name: str, description: str | None = None) -> Tool:
    """A registry tool named `name` from a `Tool`, a LangChain `BaseTool` or a
    function; raise `ToolLoadError` for anything else."""
    if isinstance(obj, Tool):
        return dataclasses.replace(obj, name=name, description=description or obj.description)
    if isinstance(obj, BaseTool):
        return tool_from_base_tool(obj, name=name, description=description)
    if inspect.isfunction(obj) or inspect.ismethod(obj) or inspect.isbuiltin(obj):
        return tool_from_function(obj, name=name, description=description)
    raise ToolLoadError(
        f"{type(obj).__name__!r} object is not a tool: expected a function, a LangChain tool "
        "(@tool) or a tools.registry.Tool"
    )


def python_tool(ref: str, *, name: str, description: str | None = None) -> Tool:
    """The tool at `module:attribute`, registered as `name`."""
    return tool_from_object(load_reference(ref), name=name, description=description)


@dataclasses.dataclass(frozen=True)
class EntryPointFailure:
    """An entry point of `switchboard.tools` that did not yield a tool."""

    name: str
    value: str
    reason: str


def entry_point_tools(
    group: str = ENTRY_POINT_GROUP,
) -> tuple[list[Tool], list[EntryPointFailure]]:
    """The tools installed packages register in `group`, and the entry points
    that failed (import errors, objects that are not tools), each reported once
    and without stopping the others."""
    tools: list[Tool] = []
    failures: list[EntryPointFailure] = []
    for ep in metadata.entry_points(group=group):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            failures.append(EntryPointFailure(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
            continue
        try:
            tools.append(tool_from_object(obj, name=ep.name))
        except ToolLoadError as exc:
            failures.append(EntryPointFailure(ep.name, ep.value, str(exc)))
    return tools, failures
