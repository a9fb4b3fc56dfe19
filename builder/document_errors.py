"""Errors raised by graph-document edits and saves (`builder.document`)."""

from __future__ import annotations

from schemas.diagnostics import Diagnostic


class DocumentError(Exception):
    """An edit cannot be applied, or the text cannot be edited; says why."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None):
        super().__init__(message)
        self.diagnostics = diagnostics or []


class DocumentInvalid(DocumentError):
    """Saving without `draft=True` a graph that has errors (listed in `diagnostics`)."""


class DocumentConflict(DocumentError):
    """The file changed on disk since this document was read."""
