"""Checking and writing a graph document to disk: the validation gate, the
draft marker, the on-disk conflict check and the atomic write.

A graph with errors is written only as a draft: its first line is then
`DRAFT_MARKER`, so the file is visibly unfinished and still loads (with its
own errors). A save refuses to overwrite a file that changed on disk since the
document was read (compared by content hash) unless forced.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.document_errors import DocumentConflict, DocumentInvalid
from schemas.diagnostics import Diagnostic
from schemas.loader import load_graph_text

if TYPE_CHECKING:
    from builder.document import GraphDocument

#: First line of a graph file saved with validation errors.
DRAFT_MARKER = "# switchboard: draft - saved with validation errors; fix them before it can run"


@dataclass(frozen=True)
class SaveResult:
    """Where a graph was written, whether as a draft, and its diagnostics then."""

    path: Path
    draft: bool
    diagnostics: list[Diagnostic]


def content_hash(text: str) -> str:
    """SHA-256 of the text (UTF-8), as hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def graph_diagnostics(
    text: str, file: str, directory: str | Path | None = None
) -> list[Diagnostic]:
    """Loader diagnostics plus static checks of a graph text, sorted by place;
    tools and handoff targets are checked against `directory` (the graphs
    directory) when given."""
    loaded = load_graph_text(text, file)
    if loaded.spec is None:
        return loaded.diagnostics
    from schemas.catalog import GraphCatalog
    from schemas.checks import check_graph
    from schemas.validate import known_tools

    extra: dict[str, Any] = {}
    if directory is not None:
        catalog = GraphCatalog(directory)
        extra = {
            "tools": known_tools(directory),
            "graphs": catalog.ids(),
            "resolve": catalog.resolve,
        }
    found = check_graph(loaded.spec, loaded.source, file=file, **extra)
    return sorted([*loaded.diagnostics, *found], key=lambda d: (d.line, d.column, d.code))


def save_document(
    doc: GraphDocument,
    target: Path,
    *,
    draft: bool,
    force: bool,
    directory: str | Path,
) -> SaveResult:
    """Write `doc` to `target` atomically (see `GraphDocument.save`). On any
    refusal the document's text is left as it was."""
    was_draft = doc.is_draft
    doc.mark_draft(False)
    found = doc.diagnostics(directory)
    errors = [d for d in found if d.severity == "error"]
    if errors and not draft:
        doc.mark_draft(was_draft)
        raise DocumentInvalid(
            f"{target.name} has {len(errors)} error(s); fix them or save it as a draft", found
        )
    if errors and doc.is_json:
        doc.mark_draft(was_draft)
        raise DocumentInvalid("a JSON graph cannot be marked as a draft; save it as YAML")
    doc.mark_draft(bool(errors))
    if not force and target.exists():
        on_disk = content_hash(target.read_bytes().decode("utf-8", "replace"))
        if on_disk != doc.base_hash:
            doc.mark_draft(was_draft)
            raise DocumentConflict(
                f"{target} was changed by someone else since it was opened; reload it "
                "or save with force"
            )
    write_atomic(target, doc.text)
    return SaveResult(target, bool(errors), found)


def write_atomic(target: Path, text: str) -> None:
    """Replace `target` with `text` (UTF-8, newlines as given) in one rename, so
    a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
