"""Parse graph text safely into a round-trip document, a plain copy and a source map.

Untrusted text never makes this module raise: size, encoding, syntax, nesting
depth, alias expansion (billion laughs), recursive aliases, duplicate keys and
values with no JSON form all become diagnostics (codes E100-E103, E111; see
`schemas.loader`). YAML timestamps are kept as the text written, so YAML and
JSON files mean the same thing. JSON is read by the same YAML 1.2 parser; files
named `*.json` must also be strict JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import ConstructorError, DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean

from schemas.diagnostics import Diagnostic
from schemas.source import SourceMap, escape, pointer, split

#: UTF-16 surrogates: only valid in pairs, as JSON writes characters beyond U+FFFF.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Largest graph file accepted, in bytes.
MAX_FILE_BYTES = 2 * 1024 * 1024
#: Deepest nesting of mappings/lists accepted (a graph needs about ten levels).
MAX_DEPTH = 64
#: Most alias references (`*name`) accepted in one document.
MAX_ALIASES = 1_000
#: Most values that alias references may add to the document once expanded.
MAX_ALIAS_EXPANSION = 100_000


@dataclass
class ParsedDocument:
    """A document that parsed as a mapping (it may still have diagnostics)."""

    document: CommentedMap  # ruamel round-trip document: comments and order kept
    plain: dict[str, Any]  # JSON-like copy (str keys; str/int/float/bool/None leaves)
    source: SourceMap
    diagnostics: list[Diagnostic]  # E103 duplicate keys, E111 values with no JSON form


def parse_document(text: str | bytes, file: str = "<string>") -> ParsedDocument | Diagnostic:
    """Parse one YAML/JSON graph document; never raises.

    Returns the single diagnostic that stops parsing (E100, E101, E102, or E103 for a
    repeated merge key) or the parsed document with its non-fatal diagnostics.
    """
    decoded = decode_text(text, file)
    if isinstance(decoded, Diagnostic):
        return decoded
    parsed = _parse(decoded, file)
    if isinstance(parsed, Diagnostic):
        return parsed
    doc, duplicates = parsed
    source = SourceMap.from_document(doc)
    diags = _duplicate_diagnostics(duplicates, source, file)
    plain, plain_diags = _to_plain(doc, source, file)
    return ParsedDocument(doc, plain, source, diags + plain_diags)


def error_at(code: str, message: str, file: str, pos: tuple[int, int], ptr: str = "") -> Diagnostic:
    """An error diagnostic at `pos`, naming the node when `ptr` is under /nodes/<id>."""
    parts = split(ptr)
    node = parts[1] if len(parts) >= 2 and parts[0] == "nodes" else None
    return Diagnostic(code, "error", message, file, pos[0], pos[1], ptr, node)


def short_repr(value: Any) -> str:
    """repr() cut to 60 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_value(value: Any) -> str:
    """A value's kind in an author's words: 'a mapping', "text 'x'", 'the number 3'."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {short_repr(value)}"
    if isinstance(value, bool | ScalarBoolean):
        return str(bool(value)).lower()
    if value is None:
        return "nothing (empty)"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {type(value).__name__}"


def decode_text(text: str | bytes, file: str) -> str | Diagnostic:
    """The text of a graph file (BOM removed), or its E100 diagnostic (too large, not UTF-8)."""
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


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that records duplicate keys instead of failing on the
    first, keeps timestamps as text and gives scalar conversion errors a position."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.duplicates: list[tuple[Any, Any, Any]] = []  # key, key mark, mapping mark

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            self.duplicates.append((key, key_node.start_mark, node.start_mark))
            return False
        return True

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (ValueError, TypeError, OverflowError, ArithmeticError) as exc:
            raise ConstructorError(None, None, f"invalid value: {exc}", node.start_mark) from exc

    def construct_timestamp_as_text(self, node: Any) -> Any:
        return self.construct_scalar(node)


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp", _Constructor.construct_timestamp_as_text
)


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.Parser = _GuardedParser
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = True
    return yaml


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


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
    if isinstance(exc, json.JSONDecodeError):
        return Diagnostic(
            "E101", "error", f"JSON syntax error: {exc.msg}", file, exc.lineno, exc.colno
        )
    if isinstance(exc, ReaderError):
        pos = _line_col(text, exc.position) if isinstance(exc.position, int) else (1, 1)
        char = exc.character if isinstance(exc.character, int) else 0
        msg = (
            f"{lang} syntax error: character U+{char:04X} is not allowed in a graph file; "
            f"write it as the escape \\u{char:04x} inside double quotes"
        )
        return Diagnostic("E101", "error", msg, file, *pos)
    return Diagnostic("E101", "error", f"{lang} syntax error: {exc}", file)


def _parse(text: str, file: str) -> tuple[CommentedMap, list[Any]] | Diagnostic:
    """Parse one document into (mapping, duplicate keys), or the reason it cannot be used."""
    try:
        if file.lower().endswith(".json"):
            _check_strict_json(text)
        yaml = _new_yaml()
        doc = yaml.load(text)
        constructor: _Constructor = yaml.constructor
    except _DocumentTooBig as exc:
        mark = exc.problem_mark
        return Diagnostic("E102", "error", exc.problem, file, mark.line + 1, mark.column + 1)
    except (YAMLError, ValueError, TypeError, AttributeError, LookupError) as exc:
        # The parser is the boundary to untrusted text: any failure is a syntax error.
        return _syntax_error(exc, text, file)
    if not isinstance(doc, CommentedMap):
        what = "empty" if doc is None else f"{describe_value(doc)}, not a mapping"
        msg = f"graph document is {what}; expected a mapping with id, name, start and nodes"
        pos = (doc.lc.line + 1, doc.lc.col + 1) if isinstance(doc, CommentedSeq) else (1, 1)
        return Diagnostic("E102", "error", msg, file, *pos)
    return doc, constructor.duplicates


def _check_strict_json(text: str) -> None:
    """Raise for text that is not strict JSON; nesting depth is left to the YAML guard."""
    with contextlib.suppress(RecursionError):
        json.loads(text, parse_constant=_reject_constant)


def _duplicate_diagnostics(
    duplicates: list[tuple[Any, Any, Any]], source: SourceMap, file: str
) -> list[Diagnostic]:
    """E103 per repeated key, with the pointer of the mapping it repeats in."""
    mapping_at = {pos: ptr for ptr, pos in source.values.items()}
    out = []
    for key, key_mark, map_mark in duplicates:
        base = mapping_at.get((map_mark.line + 1, map_mark.column + 1))
        ptr = base or ""
        if base is not None and isinstance(key, str):
            ptr = pointer(*split(base), key)
        what = "key"
        if base is not None and split(base)[:1] == ["nodes"]:
            what = "node id" if base == "/nodes" else f"key in node '{split(base)[1]}':"
        msg = f"duplicate {what} {short_repr(key)}; keep only one (the first is used)"
        out.append(error_at("E103", msg, file, (key_mark.line + 1, key_mark.column + 1), ptr))
    return out


class _DocumentTooBig(MarkedYAMLError):
    """Raised while parsing when nesting or alias expansion passes the limits."""


class _GuardedParser(RoundTripParser):
    """Round-trip parser that accounts for every event handed to the composer and stops
    a document that nests too deeply or that aliases would blow up (billion laughs),
    before any tree is expanded; cost is linear in the text."""

    def reset_parser(self) -> None:
        super().reset_parser()
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> (expanded values, height)
        self._open: list[list[Any]] = []  # [anchor, values, height] per open collection
        self._aliases = 0
        self._expansion = 0

    def get_event(self) -> Any:
        event = super().get_event()
        if isinstance(event, ScalarEvent):
            if event.anchor:
                self._sizes[event.anchor] = (1, 0)
            self._add(1, 0)
        elif isinstance(event, AliasEvent):
            self._alias(event)
        elif isinstance(event, CollectionStartEvent):
            if len(self._open) >= MAX_DEPTH:
                self._fail(f"document is nested deeper than {MAX_DEPTH} levels", event)
            self._open.append([event.anchor, 1, 0])
        elif isinstance(event, CollectionEndEvent) and self._open:
            anchor, values, height = self._open.pop()
            if anchor:
                self._sizes[anchor] = (values, height)
            self._add(values, height)
        return event

    def _alias(self, event: Any) -> None:
        if any(frame[0] == event.anchor for frame in self._open):
            self._fail(f"alias *{event.anchor} refers to a mapping or list containing it", event)
        values, height = self._sizes.get(event.anchor, (1, 0))
        self._aliases += 1
        self._expansion += values
        if self._aliases > MAX_ALIASES or self._expansion > MAX_ALIAS_EXPANSION:
            self._fail("aliases expand the document too much (possible alias bomb)", event)
        if len(self._open) + height > MAX_DEPTH:
            self._fail(f"document is nested deeper than {MAX_DEPTH} levels", event)
        self._add(values, height)

    def _add(self, values: int, height: int) -> None:
        if self._open:
            self._open[-1][1] += values
            self._open[-1][2] = max(self._open[-1][2], height + 1)

    def _fail(self, message: str, event: Any) -> None:
        raise _DocumentTooBig(problem=message, problem_mark=event.start_mark)


def _to_plain(
    doc: CommentedMap, source: SourceMap, file: str
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Convert round-trip types to plain JSON-like Python; report what has no JSON form."""
    diags: list[Diagnostic] = []

    def reject(msg: str, p: str, pos: tuple[int, int]) -> None:
        diags.append(error_at("E111", msg, file, pos, p))

    def text(s: str, p: str, key: bool = False) -> str:
        # JSON writes characters beyond U+FFFF as two \\u escapes; YAML decodes each alone.
        if not _SURROGATE.search(s):
            return str(s)
        try:
            return s.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            msg = "text contains an unpaired surrogate escape (\\ud800-\\udfff)"
            reject(msg, p, source.locate(p, key=key))
            return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")

    def conv(v: Any, p: str) -> Any:
        tag = getattr(getattr(v, "tag", None), "value", None)
        if isinstance(v, CommentedMap | CommentedSeq) and tag is not None:
            reject(f"YAML tag {tag} is not supported; remove it", p, source.locate(p))
            return None
        if isinstance(v, dict):
            out: dict[str, Any] = {}
            for k, child in v.items():
                cp = p + "/" + escape(str(k))
                if isinstance(k, str):
                    out[text(k, cp, key=True)] = conv(child, cp)
                elif k is None:
                    reject("empty key; every key needs a name", p, source.locate(cp, key=True))
                elif isinstance(k, bool | int | float):
                    msg = f"key {k} must be text; put it in quotes"
                    reject(msg, p, source.locate(cp, key=True))
                else:
                    msg = "a list or mapping cannot be a key; keys must be text"
                    reject(msg, p, source.locate(cp, key=True))
            return out
        if isinstance(v, list):
            return [conv(child, f"{p}/{i}") for i, child in enumerate(v)]
        if isinstance(v, TaggedScalar):
            if tag == "tag:yaml.org,2002:str":
                return str(v.value)
            reject(f"YAML tag {tag} is not supported; remove it", p, source.locate(p))
            return None
        if isinstance(v, str):
            return text(v, p)
        if isinstance(v, bool | ScalarBoolean):
            return bool(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return float(v)
        if v is not None:
            kind = type(v).__name__
            msg = f"{kind} values are not supported; use text, numbers, lists or mappings"
            reject(msg, p, source.locate(p))
        return None

    return conv(doc, ""), diags
