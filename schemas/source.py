"""Where each value of a parsed YAML/JSON document sits in its file.

ruamel.yaml's round-trip loader records line/column for every mapping key and
sequence item; `SourceMap` turns that into JSON pointer -> (line, column), both
1-based, so any diagnostic about a pointer can name a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq


def escape(token: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def split(ptr: str) -> list[str]:
    if not ptr:
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr.lstrip("/").split("/")]


class SourceMap:
    """JSON pointer -> 1-based (line, column) of the value; keys tracked apart.

    A map made with `deferred` computes its positions on first use, so a
    document nobody reports on never pays for them.
    """

    def __init__(self) -> None:
        self._values: dict[str, tuple[int, int]] = {"": (1, 1)}
        self._keys: dict[str, tuple[int, int]] = {}
        self._build: Callable[[], SourceMap] | None = None

    @classmethod
    def deferred(cls, build: Callable[[], SourceMap]) -> SourceMap:
        """A map whose positions are those of `build()`, called once, on first use."""
        sm = cls()
        sm._build = build
        return sm

    def _ready(self) -> None:
        if self._build is not None:
            built, self._build = self._build(), None
            self._values, self._keys = built.values, built.keys

    @property
    def values(self) -> dict[str, tuple[int, int]]:
        """Pointer -> position of the value."""
        self._ready()
        return self._values

    @property
    def keys(self) -> dict[str, tuple[int, int]]:
        """Pointer -> position of the key naming the value (mapping entries only)."""
        self._ready()
        return self._keys

    @classmethod
    def from_document(cls, doc: Any) -> SourceMap:
        sm = cls()
        if isinstance(doc, CommentedMap | CommentedSeq):
            sm._values[""] = (doc.lc.line + 1, doc.lc.col + 1)
        sm._walk(doc, "")
        return sm

    def _walk(self, node: Any, base: str) -> None:
        for child_ptr, key_pos, value_pos, child in _children(node, base):
            if key_pos is not None:
                self._keys[child_ptr] = key_pos
            self._values[child_ptr] = value_pos
            self._walk(child, child_ptr)

    def locate(self, ptr: str, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `ptr` (or of its key when `key`), falling back
        to the nearest ancestor that exists in the file."""
        self._ready()
        tokens = split(ptr)
        while True:
            p = pointer(*tokens)
            if key and p in self._keys:
                return self._keys[p]
            if p in self._values:
                return self._values[p]
            if not tokens:
                return (1, 1)
            tokens.pop()


def _children(
    node: Any, base: str
) -> Iterator[tuple[str, tuple[int, int] | None, tuple[int, int], Any]]:
    if isinstance(node, CommentedMap):
        for k, v in node.items():
            ptr = base + "/" + escape(str(k))
            try:
                kl, kc = node.lc.key(k)
                key_pos: tuple[int, int] | None = (kl + 1, kc + 1)
            except (KeyError, TypeError):
                key_pos = None
            try:
                vl, vc = node.lc.value(k)
                value_pos = (vl + 1, vc + 1)
            except (KeyError, TypeError):
                value_pos = key_pos or (node.lc.line + 1, node.lc.col + 1)
            yield ptr, key_pos, value_pos, v
    elif isinstance(node, CommentedSeq):
        for i, v in enumerate(node):
            ptr = f"{base}/{i}"
            try:
                il, ic = node.lc.item(i)
                pos = (il + 1, ic + 1)
            except (KeyError, TypeError):
                pos = (node.lc.line + 1, node.lc.col + 1)
            yield ptr, None, pos, v
