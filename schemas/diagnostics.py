"""Diagnostics: one finding about a graph file, with where it is and how to fix it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A finding about a graph document.

    `code` is stable (documented in README); `pointer` is a JSON pointer into the
    document; `line`/`column` are 1-based and point at the offending value (or the
    closest enclosing one that exists); `node` is the node id when the finding is
    about one node.
    """

    code: str
    severity: Severity
    message: str
    file: str = "<string>"
    line: int = 1
    column: int = 1
    pointer: str = ""
    node: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        node = f" [node {self.node}]" if self.node else ""
        ptr = f" ({self.pointer})" if self.pointer else ""
        return f"{where}: {self.severity} {self.code}{node}{ptr}: {self.message}"


class GraphError(Exception):
    """Raised when a graph cannot be loaded or compiled; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        first = diagnostics[0].format() if diagnostics else "invalid graph"
        more = f" (+{len(diagnostics) - 1} more)" if len(diagnostics) > 1 else ""
        super().__init__(first + more)
