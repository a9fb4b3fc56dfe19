"""Tool declarations: the `tools.yaml` file of a graphs directory, entry-point
plugins, and the registry a call uses (built-ins + declared + entry points).

A tools file (`schemas/tools.schema.json`) maps tool names to declarations:

    schema: switchboard/tools/v1
    tools:
      orders.status:                      # an HTTP tool (see tools.http)
        description: Delivery status of an order.
        parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
        url: "{env.ORDERS_API_URL}/orders/{order_id}"
        headers: {Authorization: "Bearer {env.ORDERS_API_TOKEN}"}
        response: {status: /status}
      weather.today:                      # a Python tool (see tools.python_tools)
        python: my_package.weather:today

Problems are `Diagnostic`s naming file, line and field, with the loader's codes
for parsing and schema errors (E100-E113) and these for declarations:

- E301 a template placeholder names no parameter of the tool
- E302 a credential header holds literal text or an argument (secrets come only
  from environment variables)
- E303 a Python tool reference cannot be imported or is not a tool
- E304 `parameters` is not a JSON Schema of an object
- E305 a tool name is already taken (a built-in, or another source)
- E306 the URL template is not an http(s) URL
- E307 an entry point of `switchboard.tools` does not yield a tool
"""

from __future__ import annotations

import difflib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jsonschema
from jsonschema.exceptions import SchemaError, ValidationError
from pydantic import ValidationError as PydanticValidationError

from schemas.catalog import TOOL_FILE_NAMES, default_graphs_dir
from schemas.diagnostics import Diagnostic, GraphError
from schemas.parsing import MAX_FILE_BYTES, describe_value, error_at, parse_document, short_repr
from schemas.source import SourceMap, pointer
from tools.http import HttpToolSpec, http_tool, spec_problems
from tools.python_tools import ToolLoadError, entry_point_tools, python_tool
from tools.registry import Tool, ToolError, ToolRegistry

if TYPE_CHECKING:
    from tools.builtin.data import BusinessStore

TOOL_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


class ToolConfigError(GraphError):
    """Tool declarations that cannot be used; carries every diagnostic."""


@dataclass
class ToolFile:
    """The outcome of loading one tools file: the tools that loaded and a
    diagnostic for each problem (a tool with an error is left out)."""

    file: str
    tools: list[Tool] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


@cache
def tools_schema() -> dict[str, Any]:
    """The tools-file JSON Schema shipped in `schemas` (shared: do not mutate)."""
    text = resources.files("schemas").joinpath("tools.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(tools_schema())


@cache
def _builtin_names() -> frozenset[str]:
    from tools.builtin import builtin_tool_names

    return frozenset(builtin_tool_names())


def load_tool_text(text: str | bytes, file: str = "<string>") -> ToolFile:
    """Parse, validate and build the tools of a tools document; never raises."""
    parsed = parse_document(text, file)
    if isinstance(parsed, Diagnostic):
        msg = parsed.message.replace("graph file", "tools file")
        return ToolFile(file, [], [_with_message(parsed, msg)])
    out = ToolFile(file, [], list(parsed.diagnostics))
    for error in _validator().iter_errors(parsed.plain):
        diag = _explain(error, parsed.source, file)
        if diag not in out.diagnostics:  # a value can break a rule of two branches
            out.diagnostics.append(diag)
    if out.diagnostics:
        out.diagnostics.sort(key=lambda d: (d.line, d.column))
        return out
    for name, decl in parsed.plain.get("tools", {}).items():
        tool, problems = _build(name, decl, parsed.source, file)
        out.diagnostics += problems
        if tool is not None:
            out.tools.append(tool)
    out.diagnostics.sort(key=lambda d: (d.line, d.column))
    return out


def load_tool_file(path: str | Path) -> ToolFile:
    """Read and load a tools file; an unreadable file gives an E100 diagnostic.
    Blocking file I/O (and Python tool imports): async callers use a thread."""
    file = str(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        diag = Diagnostic("E100", "error", f"cannot read tools file: {exc.strerror or exc}", file)
        return ToolFile(file, [], [diag])
    return load_tool_text(data, file)


def load_tool_declarations(path: str | Path) -> list[Tool]:
    """The tools declared in the tools file at `path`; raise `ToolConfigError`
    with every diagnostic when any declaration is wrong."""
    loaded = load_tool_file(path)
    if loaded.diagnostics:
        raise ToolConfigError(loaded.diagnostics)
    return loaded.tools


def find_tools_file(graphs_dir: str | Path) -> Path | None:
    """The tools file of a graphs directory, if it has one."""
    for name in TOOL_FILE_NAMES:
        candidate = Path(graphs_dir) / name
        if candidate.is_file():
            return candidate
    return None


_cache_lock = threading.Lock()
_file_cache: dict[Path, tuple[tuple[int, int], ToolFile]] = {}


def _declared(graphs_dir: Path) -> ToolFile | None:
    """The directory's tools file, loaded once per version of the file."""
    path = find_tools_file(graphs_dir)
    if path is None:
        return None
    resolved = path.resolve()
    info = resolved.stat()
    stamp = (info.st_mtime_ns, info.st_size)
    with _cache_lock:
        hit = _file_cache.get(resolved)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    loaded = load_tool_file(path)
    with _cache_lock:
        _file_cache[resolved] = (stamp, loaded)
    return loaded


def _collect(graphs_dir: Path | None) -> tuple[list[Tool], list[Diagnostic]]:
    """Declared and entry-point tools that load, and every problem found."""
    directory = default_graphs_dir() if graphs_dir is None else Path(graphs_dir)
    taken = set(_builtin_names())
    tools: list[Tool] = []
    diags: list[Diagnostic] = []
    declared = _declared(directory)
    if declared is not None:
        diags += declared.diagnostics
        for tool in declared.tools:
            taken.add(tool.name)
            tools.append(tool)
    plugins, failures = entry_point_tools()
    for failure in failures:
        diags.append(_entry_point_error("E307", failure.name, f"{failure.value}: {failure.reason}"))
    for tool in plugins:
        if not TOOL_NAME.fullmatch(tool.name) or "__" in tool.name:
            diags.append(
                _entry_point_error(
                    "E307",
                    tool.name,
                    "the name is not a tool name (lowercase words joined by dots)",
                )
            )
        elif tool.name in taken:
            diags.append(_entry_point_error("E305", tool.name, "the name is already taken"))
        else:
            taken.add(tool.name)
            tools.append(tool)
    return tools, diags


def build_registry(
    graphs_dir: str | Path | None = None, *, store: BusinessStore | None = None
) -> ToolRegistry:
    """Built-in tools (on `store`, default the process store), the tools declared
    in `graphs_dir` (default: the graphs directory) and the entry-point tools.
    Raise `ToolConfigError` with every problem when anything fails to load."""
    from tools.builtin import default_registry

    tools, diags = _collect(None if graphs_dir is None else Path(graphs_dir))
    if diags:
        raise ToolConfigError(diags)
    registry = default_registry(store)
    for tool in tools:
        registry.register(tool)
    return registry


def known_tool_names(graphs_dir: str | Path | None = None) -> list[str]:
    """Sorted names of every tool that loads (built-in, declared, entry point);
    broken declarations are left out (`tools_diagnostics` reports them)."""
    tools, _ = _collect(None if graphs_dir is None else Path(graphs_dir))
    return sorted({*_builtin_names(), *(t.name for t in tools)})


def tools_diagnostics(graphs_dir: str | Path | None = None) -> list[Diagnostic]:
    """Every problem with the tools of `graphs_dir` (tools file and entry points)."""
    return _collect(None if graphs_dir is None else Path(graphs_dir))[1]


# --- building one declaration ---------------------------------------------------------------


def _build(
    name: str, decl: dict[str, Any], source: SourceMap, file: str
) -> tuple[Tool | None, list[Diagnostic]]:
    base = ("tools", name)

    def at(code: str, rel: tuple[str, ...], msg: str, *, key: bool = False) -> Diagnostic:
        ptr = pointer(*base, *rel)
        return error_at(code, f"tool '{name}': {msg}", file, source.locate(ptr, key=key), ptr)

    if name in _builtin_names():
        return None, [at("E305", (), f"'{name}' is a built-in tool; choose another name", key=True)]
    if "python" in decl:
        try:
            return python_tool(decl["python"], name=name, description=decl.get("description")), []
        except ToolLoadError as exc:
            return None, [at("E303", ("python",), str(exc))]
    problems: list[Diagnostic] = []
    params = decl.get("parameters", {"type": "object", "properties": {}})
    try:
        jsonschema.Draft202012Validator.check_schema(params)
        if params.get("type") != "object":
            problems.append(at("E304", ("parameters",), "parameters must have type: object"))
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        problems.append(
            at("E304", ("parameters",), f"not a valid JSON Schema at {where}: {exc.message}")
        )
    try:
        spec = HttpToolSpec.model_validate({"name": name, **decl})
    except PydanticValidationError as exc:
        for err in exc.errors():
            rel = tuple(str(p) for p in err["loc"])
            problems.append(at("E113", rel, f"{'.'.join(rel)}: {err['msg']}"))
        return None, problems
    for code, rel, msg in spec_problems(spec):
        problems.append(at(code, rel, msg))
    if problems:
        return None, problems
    try:
        return http_tool(spec), []
    except ToolError as exc:  # spec_problems found nothing, so this is unexpected
        return None, [at("E113", (), str(exc))]


def _entry_point_error(code: str, name: str, message: str) -> Diagnostic:
    where = f"entry point {name}"
    return Diagnostic(code, "error", f"tool entry point '{name}': {message}", where, 1, 1)


def _with_message(d: Diagnostic, message: str) -> Diagnostic:
    return Diagnostic(d.code, d.severity, message, d.file, d.line, d.column, d.pointer, d.node)


# --- schema errors in an author's words -----------------------------------------------------


def _explain(error: ValidationError, source: SourceMap, file: str) -> Diagnostic:
    path = list(error.absolute_path)
    ptr = pointer(*path)
    subject = _subject(path)
    value = error.instance
    kw = error.validator
    if "propertyNames" in error.relative_schema_path:
        bad = value
        key_ptr = pointer(*path, bad)
        hint = tools_schema()["$defs"]["tool_name"]["description"]
        msg = f"tool name {short_repr(bad)} is not valid: expected {hint}"
        return error_at("E113", msg, file, source.locate(key_ptr, key=True), key_ptr)
    if kw == "required":
        missing = [p for p in error.validator_value if isinstance(value, dict) and p not in value]
        msg = f"{_prefix(path)}field '{missing[0] if missing else '?'}' is required"
        return error_at("E110", msg, file, source.locate(ptr, key=True), ptr)
    if kw == "additionalProperties" and isinstance(value, dict):
        allowed = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        extra = next((k for k in value if k not in allowed), "?")
        close = difflib.get_close_matches(str(extra), allowed, n=1, cutoff=0.6)
        tail = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(allowed)}"
        key_ptr = pointer(*path, extra)
        msg = f"{_prefix(path)}unknown field '{extra}'{tail}"
        return error_at("E112", msg, file, source.locate(key_ptr, key=True), key_ptr)
    if kw == "type":
        expected = error.validator_value
        types = expected if isinstance(expected, list) else [expected]
        words = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        msg = f"{subject} must be {words}, got {describe_value(value)}"
        return error_at("E111", msg, file, source.locate(ptr), ptr)
    if kw == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        msg = f"{subject} must be one of: {options}; got {short_repr(value)}"
    elif kw in _BOUNDS:
        msg = f"{subject} must be {_BOUNDS[kw]} {error.validator_value}, got {short_repr(value)}"
    elif kw == "pattern" and isinstance(error.schema, dict) and "description" in error.schema:
        msg = f"{subject} has an invalid value {short_repr(value)}: {error.schema['description']}"
    else:
        msg = f"{subject}: {error.message}"
    return error_at("E113", msg, file, source.locate(ptr), ptr)


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
}
_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def _prefix(path: list[Any]) -> str:
    if len(path) >= 2 and path[0] == "tools":
        rest = ".".join(str(p) for p in path[2:])
        return f"tool '{path[1]}': " + (f"in '{rest}': " if rest else "")
    return ""


def _subject(path: list[Any]) -> str:
    if len(path) >= 3 and path[0] == "tools":
        return f"tool '{path[1]}': field '{'.'.join(str(p) for p in path[2:])}'"
    if len(path) == 2 and path[0] == "tools":
        return f"tool '{path[1]}'"
    return f"field '{'.'.join(str(p) for p in path)}'" if path else "the document"


def iter_tool_files(paths: list[Path]) -> Iterator[Path]:
    """The tools files among `paths` (files named like one, or in directories)."""
    for p in paths:
        if p.is_dir():
            found = find_tools_file(p)
            if found is not None:
                yield found
        elif p.name in TOOL_FILE_NAMES:
            yield p
