"""A graph file as an editable document: every edit keeps the rest of the file as written.

`GraphDocument` holds the text of one graph file and applies the builder's edits
to it: add, remove, rename and update nodes and their fields; connect,
reconnect and disconnect edges by label; set canvas positions (the `layout`
section); set graph-level settings. YAML is edited as a `ruamel.yaml` round-trip
document and written by `builder.yamltext.render_changed`, so comments, key
order and the exact text of every untouched entry survive. JSON files are
rewritten as indented JSON (key order kept).

The parts it builds on, one idea each: `builder.graph_edges` (which field holds
which edge; labels `next`, `on_fail`, `on_error`, `fallback`, `default`,
`return_to`, `otherwise`, `intent:NAME`, `exit:NAME`, `case:N`),
`builder.roundtrip` (writing values into the round-trip tree with the right
quoting), `builder.saving` (validation gate, draft marker, conflict check,
atomic write) and `builder.document_errors`.

Edits check their own arguments (unknown node, malformed id, bad label) and raise
`DocumentError`; they do not require the graph to be valid. `diagnostics()` runs
the loader and the static checks; `save()` writes only a graph without errors
unless `draft=True`, and a draft carries `DRAFT_MARKER` as its first line, so it
is visibly unfinished and still loads with its own errors.

API: `GraphDocument.open(path)`, `GraphDocument.from_text(text, file)`,
`.text`, `.data`, `.node_ids()`, `.node(id)`, `.edges()`, `.is_draft`, the edit
methods below, `.diagnostics(directory)`, `.save(path, draft=..., force=...)`;
`edges_of(data)` for any plain graph mapping.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, get_args

from ruamel.yaml.comments import CommentedMap

from builder import yamltext
from builder.document_errors import DocumentConflict, DocumentError, DocumentInvalid
from builder.graph_edges import DIRECT_EDGES, Edge, edge_holder, edges_of, node_edges, set_edge
from builder.roundtrip import assign, check_field, child, delete, rename_key, to_yaml
from builder.saving import (
    DRAFT_MARKER,
    SaveResult,
    content_hash,
    graph_diagnostics,
    save_document,
)
from schemas.diagnostics import Diagnostic
from schemas.loader import load_graph_text
from schemas.spec import NodeSpec

__all__ = [
    "DIRECT_EDGES",
    "DRAFT_MARKER",
    "NODE_KINDS",
    "DocumentConflict",
    "DocumentError",
    "DocumentInvalid",
    "Edge",
    "GraphDocument",
    "SaveResult",
    "content_hash",
    "edges_of",
]

NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
#: Node kinds, from the spec's node union.
NODE_KINDS: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in get_args(get_args(NodeSpec)[0])
)
#: Top-level keys edited through their own operations, not `set_setting`.
_STRUCTURAL = ("schema", "nodes", "layout")


class GraphDocument:
    """The text of one graph file and the edits made to it (see the module doc)."""

    def __init__(self, text: str, file: str = "<string>"):
        """Raises DocumentError (with the loader's diagnostics) when the text is
        not a mapping that parses, or has duplicate keys."""
        self.file = file
        self.is_json = file.lower().endswith(".json")
        body = text.removeprefix("\ufeff")
        loaded = load_graph_text(body, file)
        fatal = [d for d in loaded.diagnostics if d.code in ("E100", "E101", "E102", "E103")]
        if loaded.document is None or fatal:
            first = (fatal or loaded.diagnostics)[0]
            raise DocumentError(
                f"{file} cannot be edited until this is fixed by hand: line {first.line}: "
                f"{first.message}",
                loaded.diagnostics,
            )
        self._yaml = yamltext.new_yaml()
        self._doc: CommentedMap = self._yaml.load(body)
        if not self.is_json:
            self._yaml = yamltext.new_yaml(yamltext.guess_indent(body, self._doc))
        self._text = body
        self.base_hash = content_hash(text)

    @classmethod
    def from_text(cls, text: str, file: str = "<string>") -> GraphDocument:
        return cls(text, file)

    @classmethod
    def open(cls, path: str | Path) -> GraphDocument:
        """The document of the file at `path` (blocking read). DocumentError when
        it cannot be read or edited."""
        p = Path(path)
        try:
            text = p.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DocumentError(f"cannot read graph file {p}: {exc}") from None
        return cls(text, str(p))

    # --- reading -----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The current file text (what `save` writes, without a draft marker)."""
        return self._text

    @property
    def data(self) -> dict[str, Any]:
        """A plain JSON-like copy of the current document."""
        result: dict[str, Any] = yamltext.plain(self._doc)
        return result

    @property
    def is_draft(self) -> bool:
        """True when the text starts with the draft marker."""
        return self._text.startswith(DRAFT_MARKER)

    def node_ids(self) -> list[str]:
        return [str(k) for k in self._nodes()]

    def node(self, node_id: str) -> dict[str, Any]:
        """A plain copy of node `node_id`; DocumentError when there is none."""
        node: dict[str, Any] = yamltext.plain(self._node(node_id))
        return node

    def edges(self) -> list[Edge]:
        return edges_of(self.data)

    # --- node edits --------------------------------------------------------------------------

    def add_node(
        self,
        node_id: str,
        kind: str,
        fields: Mapping[str, Any] | None = None,
        *,
        after: str | None = None,
        position: tuple[float, float] | None = None,
    ) -> None:
        """Add node `node_id` of `kind` with `fields`, after node `after` (default:
        last), and at `position` on the canvas when given."""
        _check_id(node_id)
        if kind not in NODE_KINDS:
            raise DocumentError(f"unknown node kind {kind!r}; kinds: {', '.join(NODE_KINDS)}")
        fields = dict(fields or {})
        fields.pop("type", None)

        def edit(doc: CommentedMap) -> None:
            nodes = _nodes_of(doc, create=True)
            if node_id in nodes:
                raise DocumentError(f"a node {node_id!r} already exists")
            index = len(nodes)
            if after is not None:
                if after not in nodes:
                    raise DocumentError(f"no node {after!r} to add {node_id!r} after")
                index = list(nodes).index(after) + 1
            nodes.insert(index, node_id, to_yaml({"type": kind, **fields}))
            if position is not None:
                _set_position(doc, node_id, position)

        self._apply(edit)

    def remove_node(self, node_id: str) -> list[Edge]:
        """Remove node `node_id` and its layout entry. Edges into it are kept and
        returned (they now dangle, so validation shows where to reconnect)."""

        def edit(doc: CommentedMap) -> None:
            nodes = _nodes_of(doc)
            _require_node(nodes, node_id)
            del nodes[node_id]
            layout = doc.get("layout")
            if isinstance(layout, CommentedMap) and node_id in layout:
                del layout[node_id]
                if not layout:
                    del doc["layout"]

        self._apply(edit)
        return [e for e in self.edges() if e.target == node_id]

    def rename_node(self, old_id: str, new_id: str) -> None:
        """Rename a node where it stands, and every reference to it: edges,
        `start`, global intents' `goto` and its layout entry."""
        _check_id(new_id)

        def edit(doc: CommentedMap) -> None:
            nodes = _nodes_of(doc)
            _require_node(nodes, old_id)
            if new_id in nodes:
                raise DocumentError(f"a node {new_id!r} already exists")
            rename_key(nodes, old_id, new_id)
            for node in nodes.values():
                if isinstance(node, CommentedMap):
                    for label, target in list(node_edges(node)):
                        if target == old_id:
                            set_edge(node, label, new_id)
            if doc.get("start") == old_id:
                doc["start"] = new_id
            intents = doc.get("global_intents")
            if isinstance(intents, Mapping):
                for intent in intents.values():
                    if isinstance(intent, CommentedMap) and intent.get("goto") == old_id:
                        intent["goto"] = new_id
            layout = doc.get("layout")
            if isinstance(layout, CommentedMap) and old_id in layout:
                rename_key(layout, old_id, new_id)

        self._apply(edit)

    def update_node(self, node_id: str, changes: Mapping[str, Any]) -> None:
        """Set fields of node `node_id`; a value of None removes the field. Nested
        mappings are merged so comments inside them survive."""

        def edit(doc: CommentedMap) -> None:
            node = _node_in(doc, node_id)
            for key, value in changes.items():
                check_field(key)
                if value is None:
                    node.pop(key, None)
                else:
                    assign(node, key, value)

        self._apply(edit)

    def set_node(self, node_id: str, body: Mapping[str, Any]) -> None:
        """Make node `node_id` exactly `body` (fields not in it are removed), keeping
        the order and comments of the fields that stay."""
        current = self.node(node_id)
        changes: dict[str, Any] = {k: None for k in current if k not in body}
        changes.update(body)
        self.update_node(node_id, changes)

    def set_field(self, node_id: str, path: tuple[str | int, ...], value: Any) -> None:
        """Set one nested field, e.g. `("intents", "book", "examples")`; None removes it.
        Mappings on the way are created when missing."""
        if not path:
            raise DocumentError("a field path needs at least one part")

        def edit(doc: CommentedMap) -> None:
            parent: Any = _node_in(doc, node_id)
            for part in path[:-1]:
                parent = child(parent, part, create=True)
            last = path[-1]
            if value is None:
                delete(parent, last)
            else:
                assign(parent, last, value)

        self._apply(edit)

    # --- edges -------------------------------------------------------------------------------

    def connect(self, source: str, label: str, target: str) -> None:
        """Point edge `label` of node `source` at `target`. An `intent:`/`exit:`
        label creates the entry when missing; `case:N` with N = number of cases
        appends a case (its conditions still to be written)."""
        _check_id(target)

        def edit(doc: CommentedMap) -> None:
            nodes = _nodes_of(doc)
            _require_node(nodes, target)
            set_edge(_node_in(doc, source), label, target, create=True)

        self._apply(edit)

    def reconnect(self, source: str, label: str, target: str) -> None:
        """Move the existing edge `label` of node `source` to `target`."""
        if (source, label) not in {(e.source, e.label) for e in self.edges()}:
            raise DocumentError(f"node {source!r} has no edge {label!r} to reconnect")
        self.connect(source, label, target)

    def disconnect(self, source: str, label: str) -> None:
        """Delete edge `label` of node `source`: the field holding it is removed
        (an intent, exit or case keeps its other fields)."""
        if (source, label) not in {(e.source, e.label) for e in self.edges()}:
            raise DocumentError(f"node {source!r} has no edge {label!r}")

        def edit(doc: CommentedMap) -> None:
            node = _node_in(doc, source)
            holder, key = edge_holder(node, label, create=False)
            del holder[key]

        self._apply(edit)

    # --- layout and settings -----------------------------------------------------------------

    def set_positions(self, positions: Mapping[str, tuple[float, float]]) -> None:
        """Canvas positions by node id (the `layout` section, created at the end)."""

        def edit(doc: CommentedMap) -> None:
            nodes = _nodes_of(doc)
            for node_id, xy in positions.items():
                _require_node(nodes, node_id)
                _set_position(doc, node_id, xy)

        self._apply(edit)

    def set_setting(self, key: str, value: Any) -> None:
        """Set a graph-level setting (`name`, `start`, `voice`, `variables`,
        `global_intents`, `llm`, ...); None removes it."""
        check_field(key)
        if key in _STRUCTURAL:
            raise DocumentError(f"{key!r} is edited through node and layout operations")

        def edit(doc: CommentedMap) -> None:
            if value is None:
                doc.pop(key, None)
            elif key in doc:
                assign(doc, key, value)
            else:
                index = list(doc).index("nodes") if "nodes" in doc else len(doc)
                doc.insert(index, key, to_yaml(value))

        self._apply(edit)

    # --- validation and saving ---------------------------------------------------------------

    def diagnostics(self, directory: str | Path | None = None) -> list[Diagnostic]:
        """Loader diagnostics plus static checks; tools and handoff targets are
        checked against `directory` (the graphs directory) when given."""
        return graph_diagnostics(self._text, self.file, directory)

    def save(
        self,
        path: str | Path | None = None,
        *,
        draft: bool = False,
        force: bool = False,
        directory: str | Path | None = None,
    ) -> SaveResult:
        """Write the document to `path` (default: its file) atomically. With errors
        it is written only when `draft` (and marked as a draft), else
        DocumentInvalid; DocumentConflict when the file changed on disk since it
        was read, unless `force`. Blocking file I/O."""
        target = Path(path if path is not None else self.file)
        where = directory if directory is not None else target.parent
        result = save_document(self, target, draft=draft, force=force, directory=where)
        self.base_hash = content_hash(self._text)
        self.file = str(target)
        return result

    def mark_draft(self, on: bool) -> None:
        """Add (or remove) the draft marker line at the top of the text."""
        if on and not self.is_draft:
            self._replace_text(f"{DRAFT_MARKER}\n{self._text}")
        elif not on and self.is_draft:
            self._replace_text(self._text.split("\n", 1)[1] if "\n" in self._text else "")

    # --- internals ---------------------------------------------------------------------------

    def _nodes(self) -> CommentedMap:
        return _nodes_of(self._doc)

    def _node(self, node_id: str) -> CommentedMap:
        return _node_in(self._doc, node_id)

    def _replace_text(self, text: str) -> None:
        self._text = text
        self._doc = self._yaml.load(text)

    def _apply(self, edit: Callable[[CommentedMap], None]) -> None:
        new = copy.deepcopy(self._doc)
        edit(new)
        if self.is_json:
            text = json.dumps(yamltext.plain(new), indent=2, ensure_ascii=False) + "\n"
        else:
            text = yamltext.render_changed(self._yaml, self._text, self._doc, new)
        self._replace_text(text)


def _check_id(node_id: Any) -> None:
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise DocumentError(
            f"{node_id!r} is not a valid node id: a letter or '_' followed by letters, "
            "digits, '_' or '-' (at most 100 characters)"
        )


def _nodes_of(doc: CommentedMap, *, create: bool = False) -> CommentedMap:
    nodes = doc.get("nodes")
    if nodes is None and create:
        index = list(doc).index("layout") if "layout" in doc else len(doc)
        doc.insert(index, "nodes", CommentedMap())
        nodes = doc["nodes"]
    if not isinstance(nodes, CommentedMap):
        raise DocumentError("the graph has no 'nodes' mapping to edit")
    return nodes


def _require_node(nodes: CommentedMap, node_id: str) -> None:
    if node_id not in nodes:
        raise DocumentError(f"no node {node_id!r} in the graph")


def _node_in(doc: CommentedMap, node_id: str) -> CommentedMap:
    nodes = _nodes_of(doc)
    _require_node(nodes, node_id)
    node = nodes[node_id]
    if not isinstance(node, CommentedMap):
        raise DocumentError(f"node {node_id!r} is not a mapping; fix it by hand")
    return node


def _set_position(doc: CommentedMap, node_id: str, xy: tuple[float, float]) -> None:
    x, y = (_coordinate(v) for v in xy)
    layout = doc.get("layout")
    if not isinstance(layout, CommentedMap):
        doc["layout"] = layout = CommentedMap()
    position = CommentedMap([("x", x), ("y", y)])
    position.fa.set_flow_style()
    layout[node_id] = position


def _coordinate(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DocumentError(f"a canvas position must be a finite number, got {value!r}")
    rounded = round(float(value), 1)
    return int(rounded) if rounded.is_integer() else rounded
