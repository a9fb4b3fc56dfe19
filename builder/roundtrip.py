"""JSON-like values into a `ruamel.yaml` round-trip document, keeping its style.

`assign` is the one way the builder writes a value into an existing mapping or
list: a mapping is merged into the mapping already there (so comments and key
order inside it survive), a list keeps its flow or block style, an unchanged
value is left alone, and a string gets the scalar style it should have in the
file (`scalar_style`). `to_yaml` turns a new value into round-trip nodes.

Why strings need care: ruamel's `CommentedMap.__setitem__` gives a new string
the quoting of the value it replaces. That is right for a value the author
chose to quote (`'hello'` edited to `'bye'`), but wrong when the quotes were
forced by the old value itself: an empty `''` edited to `x` would be written
`'x'`, and `'hello'` edited to `it's` would become `'it''s'`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.compat import ordereddict
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    ScalarString,
    SingleQuotedScalarString,
)

from builder import yamltext
from builder.document_errors import DocumentError


def check_field(key: Any) -> None:
    """DocumentError unless `key` is a non-empty string."""
    if not isinstance(key, str) or not key:
        raise DocumentError(f"{key!r} is not a field name")


def _multiline(text: str) -> bool:
    return "\n" in text.rstrip("\n")


def scalar_style(current: Any, value: str) -> str:
    """The string to store for `value` where `current` stood (None when new).

    The author's quoting is kept (`'a'` -> `'b'`, `"a"` -> `"b"`) except where
    the old text forced it: an empty `''`/`""` was quoted only because it was
    empty, so the new value is written plainly when YAML allows (quoted when it
    would otherwise read as a number, boolean, null or syntax); a single-quoted
    value that now holds a `'` switches to double quotes instead of doubling
    it. A literal or folded block stays a block while the text has several
    lines; a text that gains several lines becomes a literal block (`|`)."""
    if isinstance(current, LiteralScalarString | FoldedScalarString):
        return type(current)(value) if _multiline(value) else str(value)
    if _multiline(value):
        return LiteralScalarString(value)
    if isinstance(current, SingleQuotedScalarString | DoubleQuotedScalarString):
        if current == "":
            return str(value)
        if isinstance(current, SingleQuotedScalarString) and "'" in value:
            return DoubleQuotedScalarString(value)
        return type(current)(value)
    return str(value)


def _store(parent: Any, key: str | int, value: Any) -> None:
    """parent[key] = value, without ruamel re-applying the old value's quoting
    to a plain string (`scalar_style` has already chosen it)."""
    if isinstance(parent, CommentedMap) and key in parent:
        ordereddict.__setitem__(parent, key, value)
    elif isinstance(parent, CommentedSeq) and isinstance(key, int) and 0 <= key < len(parent):
        list.__setitem__(parent, key, value)
    else:
        parent[key] = value


def to_yaml(value: Any) -> Any:
    """A round-trip value for JSON-like `value`; DocumentError for anything else."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            check_field(k)
            out[k] = to_yaml(v)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([to_yaml(v) for v in value])
    if isinstance(value, float) and not math.isfinite(value):
        raise DocumentError(f"{value!r} is not a number a graph file can hold")
    if isinstance(value, str) and not isinstance(value, ScalarString):
        return scalar_style(None, value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise DocumentError(f"a graph field cannot hold {type(value).__name__} values")


def has(parent: Any, key: str | int) -> bool:
    """True when `parent` (a mapping or a list) has `key`."""
    if isinstance(parent, Mapping):
        return key in parent
    return isinstance(key, int) and 0 <= key < len(parent)


def assign(parent: Any, key: str | int, value: Any) -> None:
    """parent[key] = value, merging into an existing mapping (comments and key
    order kept), keeping the flow or block style of an existing list and
    choosing a string's quoting with `scalar_style`. An equal value is left
    untouched, so its text stays as written."""
    current = parent[key] if has(parent, key) else None
    if isinstance(current, CommentedMap) and isinstance(value, Mapping):
        for k in [k for k in current if k not in value]:
            del current[k]
        for k, v in value.items():
            check_field(k)
            assign(current, k, v)
        return
    new = to_yaml(value)
    if current is not None and yamltext.plain(current) == yamltext.plain(new):
        return
    if isinstance(current, CommentedSeq) and isinstance(new, CommentedSeq):
        if current.fa.flow_style():
            new.fa.set_flow_style()
    elif isinstance(new, str):
        new = scalar_style(current, new)
    _store(parent, key, new)


def child(parent: Any, part: str | int, *, create: bool) -> Any:
    """parent[part], creating an empty mapping for a missing mapping key when
    `create`; DocumentError when there is no such field."""
    if isinstance(parent, CommentedMap) and isinstance(part, str):
        if part not in parent and create:
            parent[part] = CommentedMap()
        if part in parent:
            return parent[part]
    elif isinstance(parent, CommentedSeq) and isinstance(part, int) and 0 <= part < len(parent):
        return parent[part]
    raise DocumentError(f"no field {part!r} here")


def delete(parent: Any, key: str | int) -> None:
    """Remove a mapping key or a list item; DocumentError when it is not there
    (a missing mapping key is not an error)."""
    if isinstance(parent, CommentedMap) and isinstance(key, str):
        parent.pop(key, None)
    elif isinstance(parent, CommentedSeq) and isinstance(key, int) and 0 <= key < len(parent):
        del parent[key]
    else:
        raise DocumentError(f"no field {key!r} to remove")


def rename_key(mapping: CommentedMap, old: str, new: str) -> None:
    """Rename a key where it stands, keeping the comment attached to it."""
    index = list(mapping).index(old)
    comment = mapping.ca.items.pop(old, None)
    value = mapping.pop(old)
    mapping.insert(index, new, value)
    if comment is not None:
        mapping.ca.items[new] = comment
