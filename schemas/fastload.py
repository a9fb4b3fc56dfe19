"""Fast path for graph files that are plainly valid: libyaml's C parser and a
compiled (Rust) JSON Schema validator, with no source positions.

The round-trip parser in `schemas.parsing` (pure Python, every position kept)
and the Python JSON Schema validator in `schemas.loader` stay the authority:
they give every diagnostic its file:line:col. This module only answers "the
authoritative path would find nothing to report here, and this is the plain
document it would produce"; whenever it cannot be sure of that it answers
None and the caller takes the authoritative path. It gives up on (a `None`,
never a different result):

- `.json` files, directives (`%YAML`), tabs (the two scanners differ on
  some), characters YAML 1.1 and 1.2 read differently (NEL, LS, PS) and
  characters the YAML reader rejects;
- anchors, aliases, merge keys and explicit tags;
- plain scalars whose YAML 1.2 meaning is not text, null, true/false or a plain
  decimal number (`0x1f`, `1_000`, `.inf`, `=`, ...);
- keys that are not text, repeated keys, more than one document, a top level
  that is not a mapping, nesting deeper than `MAX_DEPTH`;
- any syntax error;
- a document the compiled validator rejects.

YAML 1.2 scalar resolution comes from ruamel's own resolver, so `yes`/`on`
stay text and `true` is a boolean exactly as on the authoritative path.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

import jsonschema_rs
import yaml
from ruamel.yaml.reader import Reader
from ruamel.yaml.resolver import VersionedResolver
from yaml import events

from schemas.parsing import MAX_DEPTH

#: Text the fast path leaves to the round-trip parser: a directive line, a
#: character the reader rejects, a line break only YAML 1.1 knows, a surrogate.
_DEFER_TEXT = re.compile(
    r"(?m)^%|[\t\x85\u2028\u2029\ud800-\udfff]|" + Reader.NON_PRINTABLE.pattern
)
_YAML = "tag:yaml.org,2002:"
_STR = _YAML + "str"
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(
    r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NO_KEY = object()


class _GiveUp(Exception):
    """The fast path cannot vouch for this document."""


def fast_plain(text: str, file: str) -> dict[str, Any] | None:
    """The plain document `schemas.parsing.parse_document` would produce for
    `text` (already decoded) with no diagnostics, or None when that is not
    certain (see the module doc). Never raises."""
    loader = getattr(yaml, "CSafeLoader", None)  # None: PyYAML built without libyaml
    if loader is None or file.lower().endswith(".json") or _DEFER_TEXT.search(text):
        return None
    parser = loader(text)
    try:
        return _compose(parser)
    except (_GiveUp, yaml.YAMLError, ValueError, TypeError, UnicodeError):
        return None
    finally:
        parser.dispose()


@cache
def _implicit_rules() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """ruamel's YAML 1.2 implicit resolvers: first character -> [(tag, regex)]."""
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = VersionedResolver(
        version=(1, 2)
    ).versioned_resolver
    return table


def _implicit_tag(value: str) -> str:
    """The tag ruamel's resolver gives a plain scalar (its `resolve`, minus the
    per-call version lookup)."""
    rules = _implicit_rules()
    for tag, regexp in (*rules.get(value[0] if value else "", ()), *rules.get(None, ())):
        if regexp.match(value):
            return str(tag)
    return _STR


@lru_cache(maxsize=4096)
def _plain_scalar(value: str) -> tuple[Any, bool]:
    """A plain (unquoted) scalar as YAML 1.2 reads it and whether it is text
    that may be a key, or `_GiveUp`."""
    tag = _implicit_tag(value)
    if tag == _STR:
        return value, True
    kind = tag.removeprefix(_YAML)
    if kind == "timestamp":  # the round-trip path keeps timestamps as text
        return value, False
    if kind == "null" and value in _NULLS:
        return None, False
    if kind == "bool" and value in _BOOLS:
        return _BOOLS[value], False
    if kind == "int" and _INT.fullmatch(value):
        return int(value), False
    if kind == "float" and _FLOAT.fullmatch(value):
        return float(value), False
    raise _GiveUp(value)


def _compose(parser: Any) -> dict[str, Any] | None:
    """Build the document from libyaml's events with an explicit stack."""
    # Each frame: [container, pending key or _NO_KEY]; lists keep _NO_KEY.
    stack: list[list[Any]] = []
    root: Any = _NO_KEY
    documents = 0

    def add(value: Any, *, is_text_key: bool) -> None:
        nonlocal root
        if not stack:
            root = value
            return
        frame = stack[-1]
        container = frame[0]
        if isinstance(container, list):
            container.append(value)
        elif frame[1] is _NO_KEY:
            if not is_text_key or value in container:
                raise _GiveUp("key")
            frame[1] = value
        else:
            container[frame[1]] = value
            frame[1] = _NO_KEY

    while (event := parser.get_event()) is not None:
        kind = type(event)
        if kind is events.ScalarEvent:
            if event.anchor is not None or event.tag is not None:
                raise _GiveUp("anchor or tag")
            if not event.style:  # plain (libyaml gives '' or None)
                value, is_text = _plain_scalar(event.value)
                add(value, is_text_key=is_text)
            else:
                add(event.value, is_text_key=True)
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            if event.anchor is not None or event.tag is not None:
                raise _GiveUp("anchor or tag")
            if len(stack) >= MAX_DEPTH:
                raise _GiveUp("depth")
            stack.append([{} if kind is events.MappingStartEvent else [], _NO_KEY])
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            container = stack.pop()[0]
            add(container, is_text_key=False)
        elif kind is events.AliasEvent:
            raise _GiveUp("alias")
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise _GiveUp("several documents")
    return root if isinstance(root, dict) else None


def _is_regex(value: str) -> bool:
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def compile_validator(schema: dict[str, Any]) -> Any:
    """A compiled validator of `schema` for `fast_valid`; `format: regex` is
    checked with Python's `re`, as on the authoritative path."""
    return jsonschema_rs.validator_for(schema, validate_formats=True, formats={"regex": _is_regex})


def fast_valid(validator: Any, document: Any) -> bool:
    """True when the compiled `validator` accepts `document`. False means "ask
    the Python validator", which gives the diagnostics (the schema's patterns
    are ASCII-only and anchored, so it accepts at least what this one does)."""
    try:
        return bool(validator.is_valid(document))
    except (ValueError, TypeError, OverflowError):
        return False
