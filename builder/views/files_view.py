"""Files panel (sidebar): open a graph, create one from a template, duplicate,
rename and delete (with confirmation); and the save bar of the open graph."""

from __future__ import annotations

import streamlit as st

from builder import files
from builder.canvas import layout_changes
from builder.document import DocumentConflict, DocumentError, DocumentInvalid
from builder.edits import set_layout
from builder.views.session import Editor, apply, open_file

NO_FILE = "(choose a graph)"


def sidebar(ed: Editor) -> None:
    """Pick the graph to edit and manage the graph files."""
    st.sidebar.header("Graphs")
    try:
        listing = files.list_graphs(ed.graphs_dir)
    except files.GraphFileError as exc:
        st.sidebar.error(str(exc))
        return
    names = [g.file_name for g in listing]
    labels = {
        g.file_name: f"{g.file_name}{' · draft' if g.draft else ''}{'' if g.ok else ' · ⛔'}"
        for g in listing
    }
    current = ed.path.name if ed.path is not None and ed.path.name in names else NO_FILE
    chosen = st.sidebar.selectbox(
        "Graph file",
        [NO_FILE, *names],
        index=([NO_FILE, *names]).index(current),
        format_func=lambda n: labels.get(n, n),
        key=f"files.pick.{current}",
    )
    if chosen != current and chosen != NO_FILE:
        if ed.dirty:
            st.sidebar.warning("Unsaved changes in the open graph were discarded.")
        open_file(ed, ed.graphs_dir / chosen)
        st.rerun()
    with st.sidebar.expander("New graph"):
        name = st.text_input("File name", key="files.new.name", placeholder="date-of-birth")
        template = st.selectbox("Template", files.templates(), key="files.new.template")
        if st.button("Create", key="files.new.go"):
            _do(ed, lambda: files.create_graph(name, template=template, directory=ed.graphs_dir))
    if ed.path is None:
        return
    with st.sidebar.expander(f"Duplicate / rename {ed.path.name}"):
        new_name = st.text_input("New file name", key="files.copy.name")
        c1, c2 = st.columns(2)
        if c1.button("Duplicate", key="files.copy.go"):
            _do(ed, lambda: files.duplicate_graph(ed.path.name, new_name, directory=ed.graphs_dir))
        if c2.button("Rename", key="files.rename.go"):
            _do(ed, lambda: files.rename_graph(ed.path.name, new_name, directory=ed.graphs_dir))
    with st.sidebar.expander(f"Delete {ed.path.name}"):
        st.caption(f"Type **{ed.path.name}** to confirm. This cannot be undone here.")
        confirm = st.text_input("Confirm file name", key="files.delete.confirm")
        if st.button("Delete", key="files.delete.go", type="primary"):
            try:
                files.delete_graph(ed.path.name, confirm=confirm, directory=ed.graphs_dir)
            except files.GraphFileError as exc:
                st.sidebar.error(str(exc))
                return
            ed.path, ed.doc, ed.loaded, ed.flow, ed.positions = None, None, None, None, {}
            st.rerun()


def _do(ed: Editor, action: object) -> None:
    try:
        path = action()  # type: ignore[operator]
    except files.GraphFileError as exc:
        st.sidebar.error(str(exc))
        return
    open_file(ed, path)
    st.rerun()


def save_bar(ed: Editor) -> None:
    """Save the buffer: valid graphs normally, invalid ones only as a draft."""
    assert ed.doc is not None and ed.path is not None
    errors = len(ed.errors)
    status = "unsaved changes" if ed.dirty else "saved"
    draft = " · **DRAFT** (saved with errors; it cannot run)" if ed.doc.is_draft else ""
    cols = st.columns([3, 1, 1])
    cols[0].markdown(f"**{ed.path.name}** — {status}{draft}")
    if errors:
        clicked = cols[1].button(
            "Save as draft", key="save.draft", help=f"{errors} error(s): saved marked as a draft."
        )
    else:
        clicked = cols[1].button("Save", key="save.go", type="primary")
    force = cols[2].checkbox("overwrite", key="save.force", help="Overwrite changes made on disk.")
    if not clicked:
        return
    moved = layout_changes(ed.document, ed.positions)
    try:
        if moved:
            apply(ed, lambda doc: set_layout(doc, moved), structural=False)
        result = ed.doc.save(ed.path, draft=bool(errors), force=force, directory=ed.graphs_dir)
    except (DocumentInvalid, DocumentConflict) as exc:
        st.error(str(exc))
        return
    except (DocumentError, OSError) as exc:
        st.error(f"cannot save {ed.path.name}: {exc}")
        return
    ed.saved_text = ed.doc.text
    ed.notice = f"Saved {result.path.name}" + (" as a draft" if result.draft else "")
    st.rerun()
