"""A graph file as an editable document: every edit keeps the rest of the file as written.

`GraphDocument` holds the text of one graph file and applies the builder's edits
to it: add, remove, rename and update nodes and their fields; connect,
reconnect and disconnect edges by label; set canvas positions (the `layout`
section); set graph-level settings. YAML is edited as a `ruamel.yaml` round-trip
document and written by `builder.yamltext.render_changed`, so comments, key
order and the exact text of every untouched entry survive. JSON files are
rewritten as indented JSON (key order kept).

Edge labels are those of `schemas.spec.node_targets`: `next`, `on_fail`,
`on_error`, `fallback`, `default`, `return_to`, `otherwise`, `intent:NAME`,
`exit:NAME`, `case:N`.

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
import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from builder import yamltext
from schemas.diagnostics import Diagnostic
from schemas.loader import load_graph_text
from schemas.spec import NodeSpec

#: First line of a graph file saved with validation errors.
DRAFT_MARKER = "# switchboard: draft - saved with validation errors; fix them before it can run"
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
#: Node kinds, from the spec's node union.
NODE_KINDS: tuple[str, ...] = tuple(
    get_args(cls.model_fields["type"].annotation)[0] for cls in get_args(get_args(NodeSpec)[0])
)
#: Edge fields holding one target directly on the node.
DIRECT_EDGES = ("next", "on_fail", "on_error", "fallback", "default", "return_to", "otherwise")
#: Top-level keys edited through their own operations, not `set_setting`.
_STRUCTURAL = ("schema", "nodes", "layout")


class DocumentError(Exception):
    """An edit cannot be applied, or the text cannot be edited; says why."""

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None):
        super().__init__(message)
        self.diagnostics = diagnostics or []


class DocumentInvalid(DocumentError):
    """Saving without `draft=True` a graph that has errors (listed in `diagnostics`)."""


class DocumentConflict(DocumentError):
    """The file changed on disk since this document was read."""


@dataclass(frozen=True)
class Edge:
    """One edge: the node holding it, the field (label) and the target node id."""

    source: str
    label: str
    target: str


@dataclass(frozen=True)
class SaveResult:
    path: Path
    draft: bool
    diagnostics: list[Diagnostic]


def edges_of(data: Any) -> list[Edge]:
    """Every node-to-node edge of a plain graph mapping, in file order; tolerant
    of invalid graphs (malformed parts are skipped)."""
    nodes = data.get("nodes") if isinstance(data, Mapping) else None
    if not isinstance(nodes, Mapping):
        return []
    out: list[Edge] = []
    for source, node in nodes.items():
        if isinstance(node, Mapping):
            out += [Edge(str(source), label, target) for label, target in _node_edges(node)]
    return out


def _node_edges(node: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in node.items():
        if key in DIRECT_EDGES and isinstance(value, str):
            yield key, value
        elif key in ("intents", "exits") and isinstance(value, Mapping):
            prefix = "intent" if key == "intents" else "exit"
            for name, item in value.items():
                if isinstance(item, Mapping) and isinstance(item.get("next"), str):
                    yield f"{prefix}:{name}", item["next"]
        elif key == "cases" and isinstance(value, list):
            for i, case in enumerate(value):
                if isinstance(case, Mapping) and isinstance(case.get("next"), str):
                    yield f"case:{i}", case["next"]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
            nodes.insert(index, node_id, _to_yaml({"type": kind, **fields}))
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
            _rename_key(nodes, old_id, new_id)
            for node in nodes.values():
                if isinstance(node, CommentedMap):
                    for label, target in list(_node_edges(node)):
                        if target == old_id:
                            _set_edge(node, label, new_id)
            if doc.get("start") == old_id:
                doc["start"] = new_id
            intents = doc.get("global_intents")
            if isinstance(intents, Mapping):
                for intent in intents.values():
                    if isinstance(intent, CommentedMap) and intent.get("goto") == old_id:
                        intent["goto"] = new_id
            layout = doc.get("layout")
            if isinstance(layout, CommentedMap) and old_id in layout:
                _rename_key(layout, old_id, new_id)

        self._apply(edit)

    def update_node(self, node_id: str, changes: Mapping[str, Any]) -> None:
        """Set fields of node `node_id`; a value of None removes the field. Nested
        mappings are merged so comments inside them survive."""

        def edit(doc: CommentedMap) -> None:
            node = _node_in(doc, node_id)
            for key, value in changes.items():
                _check_field(key)
                if value is None:
                    node.pop(key, None)
                else:
                    _assign(node, key, value)

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
                parent = _child(parent, part, create=True)
            last = path[-1]
            if value is None:
                _delete(parent, last)
            else:
                _assign(parent, last, value)

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
            _set_edge(_node_in(doc, source), label, target, create=True)

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
            holder, key = _edge_holder(node, label, create=False)
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
        _check_field(key)
        if key in _STRUCTURAL:
            raise DocumentError(f"{key!r} is edited through node and layout operations")

        def edit(doc: CommentedMap) -> None:
            if value is None:
                doc.pop(key, None)
            elif key in doc:
                _assign(doc, key, value)
            else:
                index = list(doc).index("nodes") if "nodes" in doc else len(doc)
                doc.insert(index, key, _to_yaml(value))

        self._apply(edit)

    # --- validation and saving ---------------------------------------------------------------

    def diagnostics(self, directory: str | Path | None = None) -> list[Diagnostic]:
        """Loader diagnostics plus static checks; tools and handoff targets are
        checked against `directory` (the graphs directory) when given."""
        loaded = load_graph_text(self._text, self.file)
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
        found = check_graph(loaded.spec, loaded.source, file=self.file, **extra)
        return sorted([*loaded.diagnostics, *found], key=lambda d: (d.line, d.column, d.code))

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
        was_draft = self.is_draft
        self._set_draft_marker(False)
        found = self.diagnostics(where)
        errors = [d for d in found if d.severity == "error"]
        if errors and not draft:
            self._set_draft_marker(was_draft)
            raise DocumentInvalid(
                f"{target.name} has {len(errors)} error(s); fix them or save it as a draft",
                found,
            )
        if errors and self.is_json:
            raise DocumentInvalid("a JSON graph cannot be marked as a draft; save it as YAML")
        self._set_draft_marker(bool(errors))
        if not force and target.exists():
            on_disk = content_hash(target.read_bytes().decode("utf-8", "replace"))
            if on_disk != self.base_hash:
                self._set_draft_marker(was_draft)
                raise DocumentConflict(
                    f"{target} was changed by someone else since it was opened; reload it "
                    "or save with force"
                )
        _write_atomic(target, self._text)
        self.base_hash = content_hash(self._text)
        self.file = str(target)
        return SaveResult(target, bool(errors), found)

    # --- internals ---------------------------------------------------------------------------

    def _nodes(self) -> CommentedMap:
        return _nodes_of(self._doc)

    def _node(self, node_id: str) -> CommentedMap:
        return _node_in(self._doc, node_id)

    def _set_draft_marker(self, on: bool) -> None:
        if on and not self.is_draft:
            self._replace_text(f"{DRAFT_MARKER}\n{self._text}")
        elif not on and self.is_draft:
            self._replace_text(self._text.split("\n", 1)[1] if "\n" in self._text else "")

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


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_id(node_id: Any) -> None:
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise DocumentError(
            f"{node_id!r} is not a valid node id: a letter or '_' followed by letters, "
            "digits, '_' or '-' (at most 100 characters)"
        )


def _check_field(key: Any) -> None:
    if not isinstance(key, str) or not key:
        raise DocumentError(f"{key!r} is not a field name")


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


def _rename_key(mapping: CommentedMap, old: str, new: str) -> None:
    index = list(mapping).index(old)
    comment = mapping.ca.items.pop(old, None)
    value = mapping.pop(old)
    mapping.insert(index, new, value)
    if comment is not None:
        mapping.ca.items[new] = comment


def _child(parent: Any, part: str | int, *, create: bool) -> Any:
    if isinstance(parent, CommentedMap) and isinstance(part, str):
        if part not in parent and create:
            parent[part] = CommentedMap()
        if part in parent:
            return parent[part]
    elif isinstance(parent, CommentedSeq) and isinstance(part, int) and 0 <= part < len(parent):
        return parent[part]
    raise DocumentError(f"no field {part!r} here")


def _delete(parent: Any, key: str | int) -> None:
    if isinstance(parent, CommentedMap) and isinstance(key, str):
        parent.pop(key, None)
    elif isinstance(parent, CommentedSeq) and isinstance(key, int) and 0 <= key < len(parent):
        del parent[key]
    else:
        raise DocumentError(f"no field {key!r} to remove")


def _edge_holder(node: CommentedMap, label: str, *, create: bool) -> tuple[Any, str]:
    """The mapping and key that hold edge `label` of `node`."""
    kind, _, name = label.partition(":")
    if label in DIRECT_EDGES:
        return node, label
    if kind in ("intent", "exit") and name:
        field = "intents" if kind == "intent" else "exits"
        group = node.get(field)
        if group is None and create:
            node[field] = group = CommentedMap()
        if isinstance(group, CommentedMap):
            if name not in group and create:
                group[name] = CommentedMap()
            if isinstance(group.get(name), CommentedMap):
                return group[name], "next"
    if kind == "case" and name.isdigit():
        cases = node.get("cases")
        if cases is None and create:
            node["cases"] = cases = CommentedSeq()
        index = int(name)
        if isinstance(cases, CommentedSeq):
            if index == len(cases) and create:
                cases.append(CommentedMap([("when", CommentedSeq())]))
            if index < len(cases) and isinstance(cases[index], CommentedMap):
                return cases[index], "next"
    raise DocumentError(
        f"{label!r} is not an edge this node can hold (labels: {', '.join(DIRECT_EDGES)}, "
        "intent:NAME, exit:NAME, case:N)"
    )


def _set_edge(node: CommentedMap, label: str, target: str, *, create: bool = False) -> None:
    holder, key = _edge_holder(node, label, create=create)
    holder[key] = target


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


def _to_yaml(value: Any) -> Any:
    """A round-trip value for JSON-like `value`; DocumentError for anything else."""
    if isinstance(value, Mapping):
        out = CommentedMap()
        for k, v in value.items():
            _check_field(k)
            out[k] = _to_yaml(v)
        return out
    if isinstance(value, list | tuple):
        return CommentedSeq([_to_yaml(v) for v in value])
    if isinstance(value, float) and not math.isfinite(value):
        raise DocumentError(f"{value!r} is not a number a graph file can hold")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise DocumentError(f"a graph field cannot hold {type(value).__name__} values")


def _assign(parent: Any, key: str | int, value: Any) -> None:
    """parent[key] = value, merging into an existing mapping (comments and key
    order kept) and keeping the flow or block style of an existing list."""
    current = parent[key] if _has(parent, key) else None
    if isinstance(current, CommentedMap) and isinstance(value, Mapping):
        for k in [k for k in current if k not in value]:
            del current[k]
        for k, v in value.items():
            _check_field(k)
            _assign(current, k, v)
        return
    new = _to_yaml(value)
    if isinstance(current, CommentedSeq) and isinstance(new, CommentedSeq):
        if yamltext.plain(current) == yamltext.plain(new):
            return
        if current.fa.flow_style():
            new.fa.set_flow_style()
    elif current is not None and yamltext.plain(current) == yamltext.plain(new):
        return
    parent[key] = new


def _has(parent: Any, key: str | int) -> bool:
    if isinstance(parent, Mapping):
        return key in parent
    return isinstance(key, int) and 0 <= key < len(parent)
