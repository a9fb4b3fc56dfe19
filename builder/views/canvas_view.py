"""The canvas panel: the graph drawn with streamlit-flow, a palette to add
nodes, and canvas edits (connect, delete, move; clicking an edge opens it in
the properties panel to reconnect it) applied to the file."""

from __future__ import annotations

import re

import streamlit as st
from streamlit_flow import streamlit_flow
from streamlit_flow.layouts import LayeredLayout, ManualLayout

from builder import edits
from builder.canvas import (
    KIND_COLOURS,
    canvas_changes,
    flow_positions,
    graph_nodes,
    parse_edge_id,
)
from builder.document import GraphDocument
from builder.forms import node_kind_title, node_kinds
from builder.views.session import Editor, apply, rebuild_canvas

NODE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
CANVAS_HEIGHT = 640


def render(ed: Editor) -> None:
    """Draw the canvas and apply what the user did on it."""
    assert ed.flow is not None
    _legend()
    relayout = st.session_state.pop("canvas.relayout", False)
    new_state = streamlit_flow(
        # A new key per rebuilt state: the component mounts afresh with it, so a
        # value it computed for the previous graph can never come back as an edit.
        f"canvas-{ed.path}-{ed.flow_version}",
        ed.flow,
        height=CANVAS_HEIGHT,
        fit_view=True,
        show_controls=True,
        show_minimap=True,
        allow_new_edges=True,
        layout=LayeredLayout("down") if relayout else ManualLayout(),
        get_node_on_click=True,
        get_edge_on_click=True,
        pan_on_drag=True,
        allow_zoom=True,
        min_zoom=0.2,
        enable_node_menu=True,
        enable_edge_menu=True,
        enable_pane_menu=False,
        hide_watermark=True,
    )
    # The component returns its last value on every rerun; only a value not
    # seen before is a new canvas event. It is compared with the state the
    # canvas was given (`ed.flow`), never handed back to the component.
    if new_state is ed.flow or new_state.timestamp == ed.flow_seen:
        return _buttons(ed)
    ed.flow_seen = new_state.timestamp
    nodes = graph_nodes(ed.document)
    ed.positions = {k: v for k, v in flow_positions(new_state).items() if k in nodes}
    _select(ed, new_state.selected_id, nodes)
    changes = canvas_changes(ed.document, new_state, shown=ed.flow)
    if changes:
        if ed.selected in changes.deleted_nodes:
            ed.selected, ed.selected_edge = None, None

        def edit(doc: GraphDocument) -> None:
            for node_id in changes.deleted_nodes:
                edits.delete_node(doc, node_id)
            for source, label in changes.deleted_edges:
                edits.delete_edge(doc, source, label)
            for source, target in changes.new_edges:
                edits.connect(doc, source, target)

        try:
            apply(ed, edit)
        except edits.EditError as exc:
            ed.notice = f"That canvas edit was not applied: {exc}"
        # the canvas now shows the document again (a refused edit is taken back)
        rebuild_canvas(ed, keep_positions=True, force=True)
        st.rerun()
    _buttons(ed)


def _select(ed: Editor, selected_id: str | None, nodes: dict[str, object]) -> None:
    """A node clicked on the canvas opens its properties; an edge clicked opens
    its source node's properties with that edge chosen (to reconnect it)."""
    if not selected_id:
        return
    if selected_id in nodes:
        ed.selected, ed.selected_edge = selected_id, None
        return
    parsed = parse_edge_id(selected_id)
    if parsed is not None and parsed[0] in nodes:
        ed.selected, ed.selected_edge = parsed


def _buttons(ed: Editor) -> None:
    assert ed.flow is not None
    c1, c2 = st.columns(2)
    if c1.button("Auto layout", key="canvas.layout", help="Arrange the nodes top to bottom."):
        st.session_state["canvas.relayout"] = True
        rebuild_canvas(ed, keep_positions=False)
        st.rerun()
    if c2.button("Keep positions", key="canvas.keep", help="Write node positions to the file."):
        positions = dict(ed.positions)
        apply(ed, lambda doc: edits.set_layout(doc, positions), structural=False)
        st.toast("Positions stored in the layout section (save to write the file).")


def _legend() -> None:
    chips = " ".join(
        f"<span style='background:{c};border:1px solid #9ca3af;border-radius:6px;"
        f"padding:1px 6px;font-size:12px'>{k}</span>"
        for k, c in KIND_COLOURS.items()
    )
    st.markdown(chips, unsafe_allow_html=True)


def palette(ed: Editor) -> None:
    """Add a node of a chosen kind, optionally wired after an existing node."""
    st.subheader("Add a node")
    kinds = list(node_kinds())
    kind = st.selectbox(
        "Kind", kinds, key="palette.kind", format_func=lambda k: f"{k} — {node_kind_title(k)}"
    )
    node_id = st.text_input("Node id", key="palette.id", placeholder="ask_birth_date")
    existing = list(graph_nodes(ed.document))
    after = st.selectbox("After node (optional)", ["", *existing], key="palette.after")
    if st.button("Add node", key="palette.add", type="primary"):
        node_id = node_id.strip()
        if not NODE_ID.match(node_id):
            st.error("A node id is lowercase letters, digits and '_', starting with a letter.")
            return
        if node_id in existing:
            st.error(f"There is already a node {node_id!r}.")
            return
        try:
            apply(ed, lambda doc: edits.add_node(doc, node_id, kind, after=after or None))
        except edits.EditError as exc:
            st.error(str(exc))
            return
        ed.selected = node_id
        st.rerun()
