"""The selected node's outgoing edges: reconnect one to another node, or
delete it. An edge clicked on the canvas is opened here (streamlit-flow cannot
drag an edge's end to a new node: its React Flow has no reconnect handler, so
"change this edge's target" is done in this panel)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from builder import edits
from builder.canvas import document_targets, edge_caption, graph_nodes
from builder.views.session import Editor, apply


def edge_title(node: Any, label: str) -> str:
    """How an edge is named to the user: its field, and the caption shown on
    the canvas when there is one (an intent name, a branch condition)."""
    caption = edge_caption(node, label)
    return label if not caption or caption == label else f"{label} ({caption})"


def render(ed: Editor, node_id: str, node: Any) -> None:
    """List `node_id`'s edges with a target picker and a delete button each."""
    targets = document_targets(node)
    chosen = ed.selected_edge if ed.selected_edge in targets else None
    with st.expander(f"Edges from {node_id} ({len(targets)})", expanded=chosen is not None):
        if not targets:
            st.caption("No outgoing edges. Draw one on the canvas, or set `next` above.")
            return
        if chosen is not None:
            st.caption(f"Edge **{edge_title(node, chosen)}** chosen on the canvas.")
        options = list(graph_nodes(ed.document))
        labels = [chosen] if chosen else []
        labels += [label for label in targets if label != chosen]
        for label in labels:
            target = targets[label]
            key = f"edge.{node_id}.{label}.{target}.{ed.form_version}"
            c1, c2 = st.columns([4, 1])
            picked = c1.selectbox(
                f"{edge_title(node, label)} → goes to",
                options,
                index=options.index(target) if target in options else 0,
                key=key,
            )
            if picked != target:
                _apply(ed, lambda doc, lb=label, to=picked: doc.reconnect(node_id, lb, to))
            if c2.button("Delete", key=f"{key}.delete", help=f"Remove the edge {label}."):
                ed.selected_edge = None
                _apply(ed, lambda doc, lb=label: edits.delete_edge(doc, node_id, lb))


def _apply(ed: Editor, edit: Any) -> None:
    try:
        apply(ed, edit)
    except edits.EditError as exc:
        st.error(str(exc))
        return
    st.rerun()
