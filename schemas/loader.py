"""Load a graph file: parse YAML/JSON safely, validate against the schema, build a spec.

Every problem is reported as a `Diagnostic` with file, line, column, JSON pointer
and node id; no input makes the loader raise (except `load_graph`, which raises
`GraphError` carrying all diagnostics).

Error codes (stable):

- E100 file unreadable, not UTF-8, or larger than `MAX_FILE_BYTES`
- E101 YAML/JSON syntax error (at the parser's line and column)
- E102 document is empty or not a mapping, nested deeper than `MAX_DEPTH`, or
  expands too much through aliases (alias bombs, recursive aliases)
- E103 duplicate key in a mapping
- E110 required field missing
- E111 wrong type (including non-text keys and unsupported YAML values)
- E112 unknown field
- E113 invalid value (enum, pattern, range, length, format)

YAML timestamps are kept as the text written (`day: 2024-05-01` is the string
"2024-05-01"), so YAML and JSON files mean the same thing.
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
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)
from ruamel.yaml.reader import ReaderError

from schemas.diagnostics import Diagnostic, GraphError
from schemas.source import SourceMap, pointer
from schemas.spec import GraphSpec

#: Largest graph file accepted, in bytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Deepest nesting of mappings/lists accepted (a graph needs about ten levels).
MAX_DEPTH = 64
#: Most alias references (`*name`) accepted in one document.
MAX_ALIASES = 1_000
#: Most values that alias references may add to the document once expanded.
MAX_ALIAS_EXPANSION = 100_000

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
    `diagnostics` lists every problem found, in file order.
    """
    source = SourceMap()
    decoded = _decode(text, file)
    if isinstance(decoded, Diagnostic):
        return LoadedGraph(file, None, [decoded], source, None)
    doc, diags = _parse(decoded, file)
    if doc is None:
        return LoadedGraph(file, None, diags, source, None)
    source = SourceMap.from_document(doc)
    plain, plain_diags = _to_plain(doc, "", source, file)
    diags += plain_diags
    diags += _schema_diagnostics(plain, source, file)
    spec = None
    if not diags:
        spec, spec_diags = _build_spec(plain, source, file)
        diags += spec_diags
    diags.sort(key=lambda d: (d.line, d.column))
    return LoadedGraph(file, spec if not diags else None, diags, source, doc)


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
    """The graph JSON Schema (2020-12) shipped in this package."""
    text = resources.files("schemas").joinpath("graph.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    cls = jsonschema.Draft202012Validator
    return cls(graph_schema(), format_checker=cls.FORMAT_CHECKER)


def _failed(file: str, code: str, message: str, line: int = 1, column: int = 1) -> LoadedGraph:
    diag = Diagnostic(code, "error", message, file, line, column)
    return LoadedGraph(file, None, [diag], SourceMap(), None)


def _error(code: str, message: str, file: str, pos: tuple[int, int], ptr: str = "") -> Diagnostic:
    node = _node_of(ptr)
    return Diagnostic(code, "error", message, file, pos[0], pos[1], ptr, node)


def _node_of(ptr: str) -> str | None:
    parts = ptr.split("/")
    if len(parts) >= 3 and parts[1] == "nodes":
        return parts[2].replace("~1", "/").replace("~0", "~")
    return None


# --- reading and parsing -------------------------------------------------------------------


def _decode(text: str | bytes, file: str) -> str | Diagnostic:
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        limit = MAX_FILE_BYTES // (1024 * 1024)
        return Diagnostic("E100", "error", f"graph file is larger than {limit} MB", file)
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    try:
        return text.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        head = text[: exc.start]
        line = head.count(b"\n") + 1
        column = len(head) - (head.rfind(b"\n") + 1) + 1
        msg = f"graph file is not UTF-8 text: byte 0x{text[exc.start]:02x} cannot be decoded"
        return Diagnostic("E100", "error", msg, file, line, column)


class _Constructor(RoundTripConstructor):  # type: ignore[misc]
    """Round-trip constructor that records duplicate keys instead of failing on the
    first, keeps timestamps as text and gives scalar conversion errors a position."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duplicates: list[tuple[Any, Any]] = []

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            self.duplicates.append((key, key_node.start_mark))
            return False
        return True

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise ConstructorError(None, None, f"invalid value: {exc}", node.start_mark) from exc

    def construct_timestamp_as_text(self, node: Any) -> Any:
        return self.construct_scalar(node)


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_timestamp_as_text)


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = True
    return yaml


def _line_col(text: str, index: int) -> tuple[int, int]:
    head = text[:index]
    return head.count("\n") + 1, index - (head.rfind("\n") + 1) + 1


def _syntax_error(exc: Exception, text: str, file: str) -> Diagnostic:
    lang = "JSON" if file.lower().endswith(".json") else "YAML"
    if isinstance(exc, MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = " ".join(str(exc.problem or exc.context or "invalid document").split())
        code = "E103" if isinstance(exc, DuplicateKeyError) else "E101"
        if code == "E103":
            return Diagnostic(code, "error", f"{problem}; keep only one", file, *pos)
        ctx = ""
        if exc.context and exc.problem and exc.context_mark is not None:
            ctx = f" ({exc.context} at line {exc.context_mark.line + 1})"
        return Diagnostic(code, "error", f"{lang} syntax error: {problem}{ctx}", file, *pos)
    if isinstance(exc, ReaderError):
        pos = _line_col(text, exc.position) if isinstance(exc.position, int) else (1, 1)
        char = exc.character if isinstance(exc.character, int) else 0
        msg = f"{lang} syntax error: character U+{char:04X} is not allowed ({exc.reason})"
        return Diagnostic("E101", "error", msg, file, *pos)
    return Diagnostic("E101", "error", f"{lang} syntax error: {exc}", file)


def _parse(text: str, file: str) -> tuple[Any, list[Diagnostic]]:
    """Parse one document; (None, [diagnostic]) when it cannot be used at all."""
    try:
        problem = _prescan(text, file)
        if problem is not None:
            return None, [problem]
        yaml = _new_yaml()
        doc = yaml.load(text)
        constructor: _Constructor = yaml.constructor
    except (YAMLError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        # The parser is the boundary to untrusted text: any failure is a syntax error.
        if isinstance(exc, RecursionError):
            return None, [Diagnostic("E102", "error", "document is nested too deeply", file)]
        return None, [_syntax_error(exc, text, file)]
    if not isinstance(doc, CommentedMap):
        what = "empty" if doc is None else f"{_describe_value(doc)}, not a mapping"
        msg = f"graph document is {what}; expected a mapping with id, name, start and nodes"
        pos = (doc.lc.line + 1, doc.lc.col + 1) if isinstance(doc, CommentedSeq) else (1, 1)
        return None, [Diagnostic("E102", "error", msg, file, *pos)]
    diags = [
        Diagnostic(
            "E103", "error", f"duplicate key {key!r}; keep only one (the first is used)",
            file, mark.line + 1, mark.column + 1,
        )
        for key, mark in constructor.duplicates
    ]
    return doc, diags


def _prescan(text: str, file: str) -> Diagnostic | None:
    """Walk parser events (no tree is built) and reject documents that are too deep or
    that aliases would blow up; cost is linear in the text and stops at the first excess."""
    yaml = _new_yaml()
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded values, height)
    stack: list[list[Any]] = []  # [anchor, values, height] per open collection
    open_anchors: list[str] = []
    aliases = expansion = 0

    def add(values: int, height: int) -> None:
        if stack:
            stack[-1][1] += values
            stack[-1][2] = max(stack[-1][2], height + 1)

    def fail(msg: str, event: Any) -> Diagnostic:
        mark = event.start_mark
        return Diagnostic("E102", "error", msg, file, mark.line + 1, mark.column + 1)

    for event in yaml.parse(text):
        if isinstance(event, ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = (1, 0)
            add(1, 0)
        elif isinstance(event, AliasEvent):
            aliases += 1
            if event.anchor in open_anchors:
                return fail(f"alias *{event.anchor} refers to a mapping or list containing it", event)
            values, height = sizes.get(event.anchor, (1, 0))
            expansion += values
            if aliases > MAX_ALIASES or expansion > MAX_ALIAS_EXPANSION:
                return fail("aliases expand the document too much (possible alias bomb)", event)
            if len(stack) + height > MAX_DEPTH:
                return fail(f"document is nested deeper than {MAX_DEPTH} levels", event)
            add(values, height)
        elif isinstance(event, CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                return fail(f"document is nested deeper than {MAX_DEPTH} levels", event)
            stack.append([event.anchor, 1, 0])
            if event.anchor:
                open_anchors.append(event.anchor)
        elif isinstance(event, CollectionEndEvent) and stack:
            anchor, values, height = stack.pop()
            if anchor:
                open_anchors.remove(anchor)
                sizes[anchor] = (values, height)
            add(values, height)
    return None


def _to_plain(
    value: Any, ptr: str, source: SourceMap, file: str
) -> tuple[Any, list[Diagnostic]]:
    """Convert round-trip types to plain JSON-like Python; report what has no JSON form."""
    diags: list[Diagnostic] = []

    def conv(v: Any, p: str) -> Any:
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, child in v.items():
                cp = p + "/" + str(k).replace("~", "~0").replace("/", "~1")
                if not isinstance(k, str):
                    msg = f"key {_short(k)} must be text; put it in quotes"
                    if k is None:
                        msg = "empty key; every key needs a name"
                    diags.append(_error("E111", msg, file, source.locate(cp, key=True), cp))
                    continue
                out[str(k)] = conv(child, cp)
            return out
        if isinstance(v, list):
            return [conv(child, f"{p}/{i}") for i, child in enumerate(v)]
        if isinstance(v, str):
            return str(v)
        if isinstance(v, bool) or type(v).__name__ == "ScalarBoolean":
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        if v is None:
            return None
        if isinstance(v, TaggedScalar):
            msg = f"YAML tag {v.tag} is not supported here; remove it"
        else:
            msg = f"{type(v).__name__} values are not supported; use text, numbers, lists or mappings"
        diags.append(_error("E111", msg, file, source.locate(p), p))
        return None

    return conv(value, ptr), diags


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
        yield _error("E113", msg, file, source.locate(key_ptr, key=True), key_ptr)
    elif kw == "required":
        for prop in error.validator_value:
            if isinstance(value, dict) and prop not in value:
                yield _error(
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
            yield _error("E112", msg, file, source.locate(key_ptr, key=True), key_ptr)
    elif kw in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, source, file)
    elif kw == "type":
        expected = error.validator_value
        words = [_TYPE_WORDS.get(t, t) for t in (expected if isinstance(expected, list) else [expected])]
        quote = " (put it in quotes)" if "text" in words and not isinstance(value, dict | list) else ""
        if prefix and not rel and "a mapping" in words:
            subject += " (a mapping with a 'type' field)" if path[0] == "nodes" else ""
        msg = f"{subject} must be {' or '.join(words)}, got {_describe_value(value)}{quote}"
        yield _error("E111", msg, file, source.locate(ptr), ptr)
    else:
        yield _error("E113", _value_message(error, subject, schema), file, source.locate(ptr), ptr)


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
            yield _error("E110", msg, file, source.locate(ptr, key=True), ptr)
        else:
            msg = f"{prefix}give only one of {names}, not {' and '.join(repr(g) for g in given)}"
            yield _error("E113", msg, file, source.locate(ptr), ptr)
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
    best = jsonschema.exceptions.best_match(error.context or [])
    if best is not None and best is not error:
        yield from _explain(best, source, file)
    else:
        yield _error("E113", f"{_subject(path)}: {error.message}", file, source.locate(ptr), ptr)


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
        msg = f"{subject} must be one of: {', '.join(map(str, options))}"
        if None in limit:
            msg += " (or empty)"
        msg += f"; got {_short(value)}"
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(o) for o in options], n=1, cutoff=0.6)
            msg += f" (did you mean '{close[0]}'?)" if close else ""
        return msg
    if kw == "const":
        return f"{subject} must be {limit!r}, got {_short(value)}"
    if kw == "pattern":
        hint = schema.get("description", f"text matching {limit}")
        return f"{subject} {value!r} is not valid: expected {hint}"
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
        return f"{subject} must be {bounds[kw]} {limit}, got {_short(value)}"
    if kw == "uniqueItems":
        return f"{subject} must not list the same item twice"
    if kw == "format" and limit == "regex":
        try:
            re.compile(str(value))
        except re.error as exc:
            return f"{subject} is not a valid regular expression: {exc}"
    return f"{subject}: {error.message}"


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe_value(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {_short(value)}"
    if isinstance(value, bool) or type(value).__name__ == "ScalarBoolean":
        return f"{str(bool(value)).lower()}"
    if value is None:
        return "nothing (empty)"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {type(value).__name__}"


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
            if len(loc) >= 3 and loc[0] == "nodes" and isinstance(plain["nodes"].get(loc[1]), dict):
                if loc[2] == plain["nodes"][loc[1]].get("type"):
                    del loc[2]  # pydantic inserts the union tag
            ptr = pointer(*loc)
            msg = f"{_subject(loc)}: {err['msg']} (the schema allowed it; please report this)"
            diags.append(_error("E111", msg, file, source.locate(ptr), ptr))
        return None, diags
