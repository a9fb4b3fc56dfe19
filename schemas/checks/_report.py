"""Shared plumbing of the static checks: located diagnostics and fix hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from schemas.diagnostics import Diagnostic
from schemas.source import SourceMap, pointer


class Reporter:
    """Collects findings, turning JSON pointers into file positions.

    The severity follows the code's first letter: `E` is an error, anything
    else a warning.
    """

    def __init__(self, source: SourceMap, file: str) -> None:
        self.source = source
        self.file = file
        self.found: list[Diagnostic] = []

    def add(
        self, code: str, message: str, ptr: str, *, node: str | None = None, key: bool = False
    ) -> None:
        """Record a finding about the value at `ptr` (or its key when `key`)."""
        line, column = self.source.locate(ptr, key=key)
        self.found.append(
            Diagnostic(
                code=code,
                severity="error" if code.startswith("E") else "warning",
                message=message,
                file=self.file,
                line=line,
                column=column,
                pointer=ptr,
                node=node,
            )
        )

    def at_node(self, code: str, message: str, node_id: str) -> None:
        """Record a finding about a whole node, located at the node's id."""
        self.add(code, message, node_pointer(node_id), node=node_id, key=True)

    def sorted(self) -> list[Diagnostic]:
        """Findings ordered by (line, column, code), then node and message."""
        return sorted(self.found, key=lambda d: (d.line, d.column, d.code, d.node or "", d.message))


def node_pointer(node_id: str, suffix: str = "") -> str:
    """JSON pointer of a node, or of a field inside it when `suffix` is given."""
    return pointer("nodes", node_id) + suffix


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` naming the closest candidate, or `""` when none is close."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def names(items: Iterable[str], *, quote: bool = True) -> str:
    """`'a'`, `'a' and 'b'`, `'a', 'b' and 'c'` (without quotes unless `quote`)."""
    words = [repr(i) if quote else i for i in items]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def field_path(ptr_suffix: str) -> str:
    """Dotted, readable form of a pointer suffix (`/args/day` -> `args.day`)."""
    return ptr_suffix.lstrip("/").replace("/", ".")
