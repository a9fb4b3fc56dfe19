"""Where each value of a parsed YAML/JSON document sits in its file.

ruamel.yaml's round-trip loader records line/column for every mapping key and
sequence item; `SourceMap` turns that into JSON pointer -> (line, column), both
1-based, so any diagnostic about a pointer can name a line.
"""

from __future__ import annotations

from collections.abc import Iterator
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
    """JSON pointer -> 1-based (line, column) of the value; keys tracked apart."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, int]] = {"": (1, 1)}
        self.keys: dict[str, tuple[int, int]] = {}

    @classmethod
    def from_document(cls, doc: Any) -> SourceMap:
        sm = cls()
        if isinstance(doc, CommentedMap | CommentedSeq):
            sm.values[""] = (doc.lc.line + 1, doc.lc.col + 1)
        sm._walk(doc, "")
        return sm

    def _walk(self, node: Any, base: str) -> None:
        for child_ptr, key_pos, value_pos, child in _children(node, base):
            if key_pos is not None:
                self.keys[child_ptr] = key_pos
            self.values[child_ptr] = value_pos
            self._walk(child, child_ptr)

    def locate(self, ptr: str, *, key: bool = False) -> tuple[int, int]:
        """Position of the value at `ptr` (or of its key when `key`), falling back
        to the nearest ancestor that exists in the file."""
        tokens = split(ptr)
        while True:
            p = pointer(*tokens)
            if key and p in self.keys:
                return self.keys[p]
            if p in self.values:
                return self.values[p]
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
