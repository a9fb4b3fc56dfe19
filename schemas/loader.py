"""Load a graph file: parse it, validate it against the JSON Schema, build a `GraphSpec`.

Every problem is reported as a `Diagnostic` with file, line, column, JSON pointer,
node id and what was expected; no input makes `load_graph_text`/`load_graph_file`
raise (`load_graph` raises `GraphError` carrying all diagnostics).

Error codes (stable):

- E100 file unreadable, not UTF-8, or larger than 2 MB
- E101 YAML/JSON syntax error (at the parser's line and column)
- E102 document is empty or not a mapping, nested deeper than 64 levels, or
  expands too much through aliases (alias bombs, recursive aliases)
- E103 duplicate key in a mapping
- E110 required field missing (points at the mapping that lacks it)
- E111 wrong type (including non-text keys and YAML values with no JSON form)
- E112 unknown field (points at the key; suggests the closest known field)
- E113 invalid value (enum, pattern, range, length, regular expression)

Parsing and its limits live in `schemas.parsing`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from pydantic import ValidationError as PydanticValidationError

from schemas.diagnostics import Diagnostic, GraphError
from schemas.fastload import compile_validator, fast_plain, fast_valid
from schemas.parsing import (
    MAX_FILE_BYTES,
    ParsedDocument,
    decode_text,
    describe_value,
    error_at,
    parse_document,
    short_repr,
)
from schemas.source import SourceMap, pointer
from schemas.spec import GraphSpec

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}
_KEY_KINDS = {
    "nodes": "node id",
    "layout": "node id in layout",
    "variables": "variable name",
    "global_intents": "global intent name",
    "intents": "intent name",
    "exits": "exit name",
    "args": "argument name",
}


@dataclass
class LoadedGraph:
    """The outcome of loading one graph file."""

    file: str
    spec: GraphSpec | None
    diagnostics: list[Diagnostic]
    source: SourceMap
    document: Any

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (then `spec` is set)."""
        return not any(d.severity == "error" for d in self.diagnostics)


def load_graph_text(text: str | bytes, file: str = "<string>") -> LoadedGraph:
    """Parse and validate a graph document; never raises for any input.

    Returns a spec when the document is valid, otherwise `spec` is None and
    `diagnostics` lists every problem found, in file order. A document that is
    plainly valid takes a fast path (`schemas.fastload`): its `document` is then
    the plain mapping and its source positions are computed when first asked
    for; anything else, and every diagnostic, comes from the round-trip parser
    and the Python schema validator.
    """
    fast = _load_fast(text, file)
    if fast is not None:
        return fast
    parsed = parse_document(text, file)
    if isinstance(parsed, Diagnostic):
        return LoadedGraph(file, None, [parsed], SourceMap(), None)
    plain, source = parsed.plain, parsed.source
    diags = parsed.diagnostics + _schema_diagnostics(plain, source, file)
    spec = None
    if not diags:
        spec, diags = _build_spec(plain, source, file)
    diags.sort(key=lambda d: (d.line, d.column))
    return LoadedGraph(file, spec, diags, source, parsed.document)


def _load_fast(text: str | bytes, file: str) -> LoadedGraph | None:
    """The loaded graph when the fast path can vouch for it, else None."""
    decoded = decode_text(text, file)
    if isinstance(decoded, Diagnostic):
        return None
    plain = fast_plain(decoded, file)
    if plain is None or not fast_valid(_fast_validator(), plain):
        return None
    spec, diags = _build_spec(plain, SourceMap(), file)
    if spec is None or diags:
        return None

    def positions() -> SourceMap:
        parsed = parse_document(decoded, file)
        return parsed.source if isinstance(parsed, ParsedDocument) else SourceMap()

    return LoadedGraph(file, spec, [], SourceMap.deferred(positions), plain)


def load_graph_file(path: str | Path) -> LoadedGraph:
    """Read and load a graph file; unreadable files give an E100 diagnostic.

    Blocking file I/O: async callers should run it in a worker thread.
    """
    file = str(path)
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                return _failed(file, "E100", "cannot read graph file: not a regular file")
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return _failed(file, "E100", f"cannot read graph file: {reason}")
    return load_graph_text(data, file)


def load_graph(path: str | Path) -> GraphSpec:
    """Load a graph file into a spec, or raise `GraphError` with every diagnostic."""
    loaded = load_graph_file(path)
    if loaded.spec is None:
        raise GraphError(loaded.diagnostics)
    return loaded.spec


@cache
def graph_schema() -> dict[str, Any]:
    """The graph JSON Schema (2020-12) shipped in this package (shared: do not mutate)."""
    text = resources.files("schemas").joinpath("graph.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _fast_validator() -> Any:
    return compile_validator(graph_schema())


@cache
def _validator() -> jsonschema.Draft202012Validator:
    cls = jsonschema.Draft202012Validator
    return cls(graph_schema(), format_checker=cls.FORMAT_CHECKER)


def _failed(file: str, code: str, message: str, line: int = 1, column: int = 1) -> LoadedGraph:
    diag = Diagnostic(code, "error", message, file, line, column)
    return LoadedGraph(file, None, [diag], SourceMap(), None)


# --- schema validation ---------------------------------------------------------------------


def _schema_diagnostics(plain: Any, source: SourceMap, file: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    seen: set[tuple[str, str, str]] = set()
    for error in _validator().iter_errors(plain):
        for diag in _explain(error, source, file):
            key = (diag.code, diag.pointer, diag.message)
            if key not in seen:
                seen.add(key)
                out.append(diag)
    return out


def _explain(error: ValidationError, source: SourceMap, file: str) -> Iterator[Diagnostic]:
    """One or more diagnostics for one jsonschema error, in words a graph author uses."""
    path = list(error.absolute_path)
    ptr = pointer(*path)
    value = error.instance
    kw = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    prefix, rel = _context(path)
    subject = _subject(path)

    if "propertyNames" in error.relative_schema_path:
        key_ptr = pointer(*path, value)
        parent = str(path[-1]) if path else ""
        what = _KEY_KINDS.get(parent, "key")
        hint = schema.get("description", "a non-empty name")
        msg = f"{prefix}{what} {value!r} is not valid: expected {hint}"
        yield error_at("E113", msg, file, source.locate(key_ptr, key=True), key_ptr)
    elif kw == "required":
        for prop in error.validator_value:
            if isinstance(value, dict) and prop not in value:
                yield error_at(
                    "E110",
                    _required_message(path, prop, schema, value),
                    file,
                    source.locate(ptr, key=True),
                    pointer(*path, prop),
                )
    elif kw == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        for extra in value:
            if extra in allowed:
                continue
            key_ptr = pointer(*path, extra)
            label = _label([*rel, extra])
            for_kind = _for_kind(path, value)
            close = difflib.get_close_matches(str(extra), allowed, n=1, cutoff=0.6)
            tail = f" (did you mean '{close[0]}'?)" if close else f"; allowed: {', '.join(allowed)}"
            msg = f"{prefix}unknown field '{label}'{for_kind}{tail}"
            yield error_at("E112", msg, file, source.locate(key_ptr, key=True), key_ptr)
    elif kw in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, source, file)
    elif kw == "type":
        expected = error.validator_value
        words = _type_words(expected)
        quote = (
            " (put it in quotes)" if "text" in words and not isinstance(value, dict | list) else ""
        )
        expected_words = " or ".join(words)
        if prefix and not rel and path[0] == "nodes":
            expected_words = "a mapping with a 'type' field"
        msg = f"{subject} must be {expected_words}, got {describe_value(value)}{quote}"
        yield error_at("E111", msg, file, source.locate(ptr), ptr)
    else:
        yield error_at(
            "E113", _value_message(error, subject, schema), file, source.locate(ptr), ptr
        )


def _explain_alternatives(
    error: ValidationError, source: SourceMap, file: str
) -> Iterator[Diagnostic]:
    """anyOf/oneOf: report the one alternative that fits the value's type, or say which
    of several mutually exclusive fields to give."""
    branches = error.validator_value
    value = error.instance
    path = list(error.absolute_path)
    ptr = pointer(*path)
    exclusive = [b["required"][0] for b in branches if list(b.get("required", [])) != []]
    if len(exclusive) == len(branches) and isinstance(value, dict):
        given = [f for f in exclusive if value.get(f) is not None]
        prefix, _ = _context(path)
        names = " or ".join(f"'{f}'" for f in exclusive)
        if not given:
            msg = f"{prefix}one of {names} is required"
            yield error_at("E110", msg, file, source.locate(ptr, key=True), ptr)
        else:
            msg = f"{prefix}give only one of {names}, not {' and '.join(repr(g) for g in given)}"
            yield error_at("E113", msg, file, source.locate(ptr), ptr)
        return
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    fitting = [
        errs
        for errs in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _explain(sub, source, file)
        return
    if not fitting and by_branch:
        expected = [
            word
            for errs in by_branch.values()
            for e in errs
            if e.validator == "type" and not e.relative_path
            for word in _type_words(e.validator_value)
        ]
        words = " or ".join(dict.fromkeys(expected))
        msg = f"{_subject(path)} must be {words}, got {describe_value(value)}"
        yield error_at("E111", msg, file, source.locate(ptr), ptr)
        return
    best = jsonschema.exceptions.best_match(error.context or [])
    if best is not None and best is not error:
        yield from _explain(best, source, file)
    else:
        yield error_at("E113", f"{_subject(path)}: {error.message}", file, source.locate(ptr), ptr)


def _required_message(path: list[Any], prop: str, schema: dict[str, Any], value: Any) -> str:
    prefix, rel = _context(path)
    msg = f"{prefix}field '{_label([*rel, prop])}' is required{_for_kind(path, value)}"
    if reason := schema.get("x-reason"):
        msg += f" {reason}"
    desc = schema.get("properties", {}).get(prop, {}).get("description")
    if desc:
        msg += f" ({desc[0].lower()}{desc[1:].rstrip('.')})"
    return msg


def _value_message(error: ValidationError, subject: str, schema: dict[str, Any]) -> str:
    kw, limit, value = error.validator, error.validator_value, error.instance
    if kw == "enum":
        options = [o for o in limit if o is not None]
        msg = f"{subject} must be one of: {', '.join(str(o) for o in options)}"
        if None in limit:
            msg += " (or empty)"
        msg += f"; got {short_repr(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(o) for o in options], n=1, cutoff=0.6)
            msg += f" (did you mean '{close[0]}'?)" if close else ""
        return msg
    if kw == "const":
        return f"{subject} must be {limit!r}, got {short_repr(value)}"
    if kw == "pattern":
        hint = schema.get("description", f"text matching {limit}")
        return f"{subject} has an invalid value {short_repr(value)}: expected {hint}"
    if kw == "minLength":
        return f"{subject} must not be empty"
    if kw == "maxLength":
        return f"{subject} is too long (at most {limit} characters)"
    if kw in ("minItems", "minProperties"):
        unit = "item" if kw == "minItems" else "entry"
        plural = "" if limit == 1 else ("s" if unit == "item" else "ies")
        unit = unit if not plural else ("items" if unit == "item" else "entries")
        return f"{subject} must have at least {limit} {unit}"
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
    }
    if kw in bounds:
        return f"{subject} must be {bounds[kw]} {limit}, got {short_repr(value)}"
    if kw == "uniqueItems":
        return f"{subject} must not list the same item twice"
    if kw == "format" and limit == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            return f"{subject} is not a valid regular expression: {exc}"
    return f"{subject}: {error.message}"


def _type_words(expected: Any) -> list[str]:
    types = expected if isinstance(expected, list) else [expected]
    return [_TYPE_WORDS.get(str(t), str(t)) for t in types]


def _context(path: Sequence[Any]) -> tuple[str, list[Any]]:
    """Message prefix naming the node or global intent a path is in, and the rest."""
    if len(path) >= 2 and path[0] == "nodes":
        return f"node '{path[1]}': ", list(path[2:])
    if len(path) >= 2 and path[0] == "global_intents":
        return f"global intent '{path[1]}': ", list(path[2:])
    return "", list(path)


def _subject(path: Sequence[Any]) -> str:
    prefix, rel = _context(path)
    if rel:
        return f"{prefix}field '{_label(rel)}'"
    if prefix:
        return prefix.removesuffix(": ")
    return "the document"


def _label(rel: Sequence[Any]) -> str:
    out = ""
    for part in rel:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _for_kind(path: Sequence[Any], value: Any) -> str:
    if len(path) == 2 and path[0] == "nodes" and isinstance(value, dict):
        kind = value.get("type")
        return f" for a {kind} node" if isinstance(kind, str) else ""
    return ""


# --- building the typed spec ---------------------------------------------------------------


def _build_spec(
    plain: dict[str, Any], source: SourceMap, file: str
) -> tuple[GraphSpec | None, list[Diagnostic]]:
    try:
        return GraphSpec.model_validate(plain), []
    except PydanticValidationError as exc:
        # Reaching this means the schema accepted what the spec rejects: report, don't crash.
        diags = []
        for err in exc.errors():
            loc = list(err["loc"])
            node = plain.get("nodes", {}).get(loc[1]) if len(loc) >= 3 else None
            if loc[0] == "nodes" and isinstance(node, dict) and loc[2] == node.get("type"):
                del loc[2]  # pydantic inserts the union tag
            ptr = pointer(*loc)
            msg = f"{_subject(loc)}: {err['msg']} (the schema allowed it; please report this)"
            diags.append(error_at("E111", msg, file, source.locate(ptr), ptr))
        return None, diags
