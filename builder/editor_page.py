"""The builder page: canvas, properties, validation, versions and test call.

The graphs directory comes from `--graphs-dir` (after `--` on the streamlit
command line), else `SWITCHBOARD_GRAPHS_DIR`, else `graphs/`; `?graph=FILE` in
the URL opens that file first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

from builder import files
from builder.views import canvas_view, files_view, properties, testcall, validation, versions_view
from builder.views.session import Editor, editor, open_file


def graphs_dir_from_args(argv: list[str]) -> Path:
    """The graphs directory named on the command line, else the default one."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--graphs-dir", type=Path, default=None)
    known, _ = parser.parse_known_args(argv)
    return (known.graphs_dir or files.graphs_dir()).resolve()


def _first_file(ed: Editor) -> None:
    wanted = st.query_params.get("graph")
    try:
        listing = files.list_graphs(ed.graphs_dir)
    except files.GraphFileError as exc:
        st.error(str(exc))
        return
    names = [g.file_name for g in listing]
    if wanted:
        match = next((n for n in names if n in (wanted, f"{wanted}.yaml")), None)
        if match is None:
            st.warning(f"No graph file {wanted!r} in {ed.graphs_dir}.")
        else:
            open_file(ed, ed.graphs_dir / match)
            return
    if names:
        open_file(ed, ed.graphs_dir / names[0])


def main() -> None:
    """Draw the builder for this browser session."""
    ed = editor(graphs_dir_from_args(sys.argv[1:]))
    if ed.path is None and not st.session_state.get("builder.started"):
        st.session_state["builder.started"] = True
        _first_file(ed)
    files_view.sidebar(ed)
    st.title("Switchboard builder")
    if ed.path is None:
        st.info(f"No graph open. Choose or create one in {ed.graphs_dir} (sidebar).")
        return
    if ed.doc is None:
        st.error(ed.open_error or f"{ed.path.name} cannot be opened.")
        st.code(ed.path.read_text(encoding="utf-8", errors="replace"), language="yaml")
        return
    # Always one slot for the notice: an element that comes and goes above the
    # tabs would shift them, and Streamlit would remount them on the first tab.
    with st.container():
        if ed.notice:
            st.success(ed.notice)
            ed.notice = None
    files_view.save_bar(ed)
    left, right = st.columns([5, 3], gap="medium")
    with left:
        canvas_view.render(ed)
    with right:
        tabs = st.tabs(["Properties", "Validation", "Add node", "Versions", "Test call", "YAML"])
        with tabs[0]:
            properties.render(ed)
        with tabs[1]:
            validation.render(ed)
        with tabs[2]:
            canvas_view.palette(ed)
        with tabs[3]:
            versions_view.render(ed)
        with tabs[4]:
            testcall.render(ed)
        with tabs[5]:
            st.code(ed.text, language="yaml")


main()
