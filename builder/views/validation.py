"""Validation panel: every error and warning of the buffer with its code, line
and node; choosing one selects its node."""

from __future__ import annotations

import streamlit as st

from builder.views.session import Editor


def render(ed: Editor) -> None:
    """List the diagnostics of the current buffer (updated on every edit)."""
    diags = ed.diagnostics
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    if not diags:
        st.success("Valid: no errors, no warnings.")
        return
    (st.error if errors else st.warning)(f"{errors} error(s), {warnings} warning(s)")
    for i, d in enumerate(diags):
        icon = "⛔" if d.severity == "error" else "⚠️"
        where = f"line {d.line}" + (f" · node `{d.node}`" if d.node else "")
        cols = st.columns([5, 1])
        cols[0].markdown(f"{icon} **{d.code}** ({where}): {d.message}")
        if d.node and cols[1].button("show", key=f"diag.{i}.{d.code}.{d.node}"):
            ed.selected = d.node
            st.rerun()
