"""Properties panel: the selected node's fields, or the graph settings, as
forms generated from the JSON Schema; every change is applied and validated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from builder import edits
from builder.canvas import graph_nodes
from builder.document import GraphDocument
from builder.forms import node_fields, render_form, settings_fields
from builder.views import edges_view
from builder.views.session import Editor, apply


def _variables(document: Any) -> list[str]:
    """Names a template may use: graph variables, slots, tool results, built-ins."""
    names: set[str] = {"caller", "call_id", "now", "today"}
    if isinstance(document, Mapping):
        variables = document.get("variables")
        if isinstance(variables, Mapping):
            names.update(str(k) for k in variables)
    for node in graph_nodes(document).values():
        if isinstance(node, Mapping):
            for key in ("slot", "result"):
                if isinstance(node.get(key), str):
                    names.add(node[key])
    return sorted(names)


def render(ed: Editor) -> None:
    """Draw the form for the selected node (chosen on the canvas or here)."""
    nodes = graph_nodes(ed.document)
    options = ["(graph settings)", *nodes]
    current = ed.selected if ed.selected in nodes else "(graph settings)"
    chosen = st.selectbox(
        "Edit", options, index=options.index(current), key=f"props.pick.{current}"
    )
    if chosen != current:
        ed.selected = None if chosen == "(graph settings)" else chosen
        ed.selected_edge = None
        st.rerun()
    if ed.selected is None or ed.selected not in nodes:
        _settings(ed)
    else:
        _node(ed, ed.selected, nodes[ed.selected])


def _settings(ed: Editor) -> None:
    doc = ed.document if isinstance(ed.document, Mapping) else {}
    st.caption("Graph settings: name, start node, variables, global intents, voice, LLM.")
    changes = render_form(
        settings_fields(),
        doc,
        key=f"settings.{ed.form_version}",
        node_ids=list(graph_nodes(doc)),
        variables=_variables(doc),
    )
    if changes:
        _apply(ed, lambda doc: edits.update_settings(doc, changes), from_form=True)


def _node(ed: Editor, node_id: str, node: Any) -> None:
    node = node if isinstance(node, Mapping) else {}
    kind = node.get("type")
    diags = [d for d in ed.diagnostics if d.node == node_id]
    st.markdown(f"### `{node_id}` · {kind}")
    # One container for the findings: their number changes with every edit, and
    # widgets below that moved would be remounted, losing text being typed.
    with st.container():
        for d in diags:
            (st.error if d.severity == "error" else st.warning)(f"{d.code}: {d.message}")
    try:
        fields = node_fields(str(kind))
    except KeyError:
        st.error(f"Unknown node kind {kind!r}; fix `type` in the file.")
        return
    changes = render_form(
        fields,
        node,
        key=f"node.{node_id}.{ed.form_version}",
        node_ids=list(graph_nodes(ed.document)),
        variables=_variables(ed.document),
    )
    if changes:
        _apply(ed, lambda doc: edits.update_node(doc, node_id, changes), from_form=True)
    edges_view.render(ed, node_id, node)
    with st.expander("Rename or delete"):
        new_id = st.text_input("New id", node_id, key=f"node.{node_id}.rename")
        if new_id != node_id and st.button("Rename", key=f"node.{node_id}.rename.go"):
            ed.selected = new_id
            _apply(ed, lambda doc: edits.rename_node(doc, node_id, new_id))
        if st.button("Delete node", key=f"node.{node_id}.delete"):
            ed.selected = None
            _apply(ed, lambda doc: edits.delete_node(doc, node_id))


def _apply(ed: Editor, edit: Callable[[GraphDocument], object], *, from_form: bool = False) -> None:
    before = ed.text
    try:
        apply(ed, edit, from_form=from_form)
    except edits.EditError as exc:
        st.error(str(exc))
        return
    if ed.text != before:
        st.rerun()
