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
        return sorted(
            self.found, key=lambda d: (d.line, d.column, d.code, d.node or "", d.message)
        )


def node_pointer(node_id: str, suffix: str = "") -> str:
    """JSON pointer of a node, or of a field inside it when `suffix` is given."""
    return pointer("nodes", node_id) + suffix


def suggest(name: str, candidates: Iterable[str]) -> str:
    """`"; did you mean 'x'?"` naming up to three close candidates, or `""`."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def names(items: Iterable[str]) -> str:
    """`'a'`, `'a' and 'b'`, `'a', 'b' and 'c'`."""
    quoted = [repr(i) for i in items]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def field_path(ptr_suffix: str) -> str:
    """Dotted, readable form of a pointer suffix (`/args/day` -> `args.day`)."""
    return ptr_suffix.lstrip("/").replace("/", ".")
