"""The builder's per-browser-session editor state, kept in `st.session_state`.

The open graph is held as YAML text (the buffer); every edit produces new text,
which is validated at once.

The canvas: `flow` is the state the component is *given*. It is rebuilt (with a
new `flow_version`, which is part of the component's key, so the component
mounts afresh and always takes it) only when what the canvas shows changes.
What the component *returns* is an event, never fed back as its input:
streamlit-flow takes new input when its last update time is <= the input's
timestamp, and a returned state carries exactly that time, so echoing it back
made the component re-apply and re-send it on every rerun (the re-render
loop), while edits made meanwhile could be overwritten by the echoed, older
state (the stale values). Positions the user dragged are kept in `positions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st
from streamlit_flow.state import StreamlitFlowState

from builder.canvas import Overlay, flow_positions, to_flow_state
from builder.document import DocumentError, GraphDocument
from schemas.catalog import GraphCatalog
from schemas.checks import check_graph
from schemas.diagnostics import Diagnostic
from schemas.loader import LoadedGraph, load_graph_text
from schemas.validate import known_tools

KEY = "switchboard_editor"


@dataclass
class Editor:
    """What one browser session is editing."""

    graphs_dir: Path
    path: Path | None = None
    doc: GraphDocument | None = None
    saved_text: str = ""
    open_error: str | None = None
    loaded: LoadedGraph | None = None
    flow: StreamlitFlowState | None = None  # what the canvas component is given
    flow_version: int = 0  # part of the component's key: a new version remounts it
    form_version: int = 0  # bumped when the document changes other than through a form
    flow_seen: int | None = None  # timestamp of the last canvas event applied
    positions: dict[str, dict[str, float]] = field(default_factory=dict)  # as last on canvas
    selected: str | None = None
    selected_edge: str | None = None  # edge label of `selected` chosen on the canvas
    diff: dict[str, str] = field(default_factory=dict)
    diff_lines: list[str] = field(default_factory=list)  # the diff shown in the Versions tab
    removed: dict[str, Any] = field(default_factory=dict)
    call_path: list[str] = field(default_factory=list)
    notice: str | None = None

    @property
    def text(self) -> str:
        return self.doc.text if self.doc is not None else ""

    @property
    def dirty(self) -> bool:
        return self.text != self.saved_text

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self.loaded.diagnostics if self.loaded else []

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def document(self) -> Any:
        return self.loaded.document if self.loaded else None


def editor(graphs_dir: Path) -> Editor:
    """The session's editor, created on first use for `graphs_dir`."""
    ed = st.session_state.get(KEY)
    if not isinstance(ed, Editor) or ed.graphs_dir != graphs_dir:
        ed = Editor(graphs_dir=graphs_dir)
        st.session_state[KEY] = ed
    return ed


def validate_text(text: str, path: Path, graphs_dir: Path) -> LoadedGraph:
    """Schema and static checks of an unsaved buffer, as if it were `path`."""
    loaded = load_graph_text(text, file=str(path))
    if loaded.spec is None:
        return loaded
    catalog = GraphCatalog(graphs_dir)
    found = check_graph(
        loaded.spec,
        loaded.source,
        file=loaded.file,
        tools=_tools(str(graphs_dir)),
        graphs=sorted({*catalog.ids(), loaded.spec.id}),
        resolve=catalog.resolve,
    )
    loaded.diagnostics = sorted(
        [*loaded.diagnostics, *found], key=lambda d: (d.line, d.column, d.code)
    )
    return loaded


@st.cache_data(ttl=30, show_spinner=False)
def _tools(graphs_dir: str) -> list[str]:
    return sorted(known_tools(graphs_dir))


def open_file(ed: Editor, path: Path) -> None:
    """Load `path` into the editor (discarding the buffer) and reset the canvas.
    A file that cannot be edited leaves `doc` empty and says why in `open_error`."""
    ed.path, ed.selected, ed.diff, ed.removed, ed.call_path = path, None, {}, {}, []
    ed.open_error, ed.notice, ed.flow, ed.positions = None, None, None, {}
    ed.selected_edge, ed.diff_lines = None, []
    try:
        ed.doc = GraphDocument.open(path)
    except DocumentError as exc:
        ed.doc, ed.loaded, ed.saved_text = None, None, ""
        ed.open_error = str(exc)
        return
    ed.saved_text = ed.doc.text
    ed.form_version += 1
    ed.loaded = validate_text(ed.doc.text, path, ed.graphs_dir)
    rebuild_canvas(ed, keep_positions=False)


def apply(
    ed: Editor,
    edit: Callable[[GraphDocument], object],
    *,
    structural: bool = True,
    from_form: bool = False,
) -> None:
    """Run one edit on the document, then validate the new text and refresh the
    canvas (positions dragged on the canvas are kept). Forms are redrawn from
    the document unless the edit came from a form (`from_form`), whose widgets
    already show it. Raises DocumentError (the document is unchanged then)."""
    assert ed.doc is not None and ed.path is not None
    before = ed.doc.text
    edit(ed.doc)
    if ed.doc.text == before:
        return
    ed.loaded = validate_text(ed.doc.text, ed.path, ed.graphs_dir)
    if not from_form:
        ed.form_version += 1
    if structural:
        rebuild_canvas(ed, keep_positions=True)


def rebuild_canvas(ed: Editor, *, keep_positions: bool, force: bool = False) -> None:
    """A fresh canvas state from the buffer, given to a freshly mounted
    component (new `flow_version`) unless it would look exactly like the one
    shown (then the mounted canvas stays, with what the user did on it).
    `force` remounts anyway, e.g. to take back a canvas edit that was refused.
    With `keep_positions`, nodes stay where they are on the canvas."""
    positions = None
    if keep_positions and ed.positions:
        positions = {k: (v["x"], v["y"]) for k, v in ed.positions.items()}
    overlay = Overlay(diagnostics=ed.diagnostics, diff=ed.diff, path=ed.call_path)
    flow = to_flow_state(ed.document, overlay, removed=ed.removed, positions=positions)
    if ed.flow is not None and keep_positions and not force and _looks(flow) == _looks(ed.flow):
        return  # nothing visible changed: keep the mounted canvas (remounting is slow)
    ed.flow, ed.flow_version = flow, ed.flow_version + 1
    ed.positions = flow_positions(flow)


def _looks(state: StreamlitFlowState) -> tuple[object, ...]:
    """What the canvas shows, positions aside."""
    nodes = sorted((n.id, repr(n.data), repr(sorted(n.style.items())), n.type) for n in state.nodes)
    edges = sorted((e.id, e.source, e.target, e.label, e.animated) for e in state.edges)
    return (tuple(nodes), tuple(edges))
