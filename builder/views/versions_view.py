"""Versions panel: the graph file's git history, commit, semantic diff between
two versions (listed, and highlighted on the canvas), restore, tag."""

from __future__ import annotations

import streamlit as st

from builder import semantic_diff, versions
from builder.canvas import graph_nodes
from builder.views.session import Editor, open_file, rebuild_canvas

WORKING = "working copy (saved file)"


def render(ed: Editor) -> None:
    """Draw the panel for the open graph file."""
    assert ed.path is not None
    if not versions.is_repository(ed.graphs_dir):
        st.warning(f"{ed.graphs_dir} is not in a git repository, so there is no history.")
        if st.button("Start a git repository here", key="ver.init"):
            try:
                versions.init_repository(ed.graphs_dir)
            except versions.VersionError as exc:
                st.error(str(exc))
                return
            st.rerun()
        return
    try:
        history = versions.history(ed.path)
        status = versions.file_status(ed.path)
    except versions.VersionError as exc:
        st.error(str(exc))
        return
    _commit(ed, status)
    st.subheader("History")
    if not history:
        st.caption("No commits of this file yet.")
    else:
        st.dataframe(
            [
                {
                    "commit": v.short,
                    "date": v.date,
                    "author": v.author,
                    "message": v.message,
                    "tags": ", ".join(v.tags),
                }
                for v in history
            ],
            hide_index=True,
            use_container_width=True,
        )
    revs = {f"{v.short} · {v.message[:50]}": v.commit for v in history}
    _diff(ed, revs)
    if history:
        _restore_and_tag(ed, revs)


def _commit(ed: Editor, status: str) -> None:
    assert ed.path is not None
    st.subheader("Commit")
    st.caption(f"File status in git: **{status}**")
    with st.container():  # a stable place, so the message box below never moves
        if ed.dirty:
            st.info("Save the graph first: a commit records the saved file.")
    message = st.text_input(
        "Commit message", key="ver.message", placeholder="Ask for the date of birth"
    )
    if st.button("Commit", key="ver.commit", disabled=ed.dirty or status == "clean"):
        try:
            v = versions.commit_file(ed.path, message)
        except versions.VersionError as exc:
            st.error(str(exc))
            return
        ed.notice = f"Committed {v.short}: {v.message}"
        st.rerun()


def _diff(ed: Editor, revs: dict[str, str]) -> None:
    assert ed.path is not None
    st.subheader("Compare versions")
    options = [WORKING, *revs]
    if len(options) < 2:
        st.caption("Commit the file to compare versions.")
        return
    c1, c2 = st.columns(2)
    a = c1.selectbox("From", options, index=1, key="ver.diff.a")
    b = c2.selectbox("To", options, index=0, key="ver.diff.b")
    shown = st.button("Show differences", key="ver.diff.go")
    if ed.diff_lines and st.button("Clear highlights", key="ver.diff.clear"):
        ed.diff, ed.removed, ed.diff_lines = {}, {}, []
        rebuild_canvas(ed, keep_positions=True)
        st.rerun()
    if shown:
        try:
            old = _text_at(ed, revs.get(a))
            new = _text_at(ed, revs.get(b))
            diff = semantic_diff.diff_texts(old, new, old_file=a, new_file=b)
        except (versions.VersionError, semantic_diff.DiffError, OSError) as exc:
            st.error(str(exc))
            return
        old_nodes = graph_nodes(semantic_diff.parse_plain(old))
        ed.diff_lines = diff.lines()
        ed.diff = dict(diff.highlights)
        ed.removed = {n.node_id: old_nodes.get(n.node_id, {}) for n in diff.by_status("removed")}
        rebuild_canvas(ed, keep_positions=True)
        # The canvas was drawn before this panel in this run: draw it again now.
        st.rerun()
    if ed.diff_lines:
        st.code("\n".join(ed.diff_lines), language="diff")
        st.caption(
            "Added (green), removed (grey, dashed) and changed (blue) nodes are on the canvas."
        )


def _text_at(ed: Editor, commit: str | None) -> str:
    assert ed.path is not None
    if commit is None:
        return ed.path.read_text(encoding="utf-8")
    return versions.show_file(ed.path, commit)


def _restore_and_tag(ed: Editor, revs: dict[str, str]) -> None:
    assert ed.path is not None
    st.subheader("Restore or tag")
    label = st.selectbox("Version", list(revs), key="ver.pick")
    c1, c2 = st.columns(2)
    if c1.button("Restore as a new commit", key="ver.restore", disabled=ed.dirty):
        try:
            v = versions.restore_version(ed.path, revs[label])
        except versions.VersionError as exc:
            st.error(str(exc))
            return
        open_file(ed, ed.path)
        ed.notice = f"Restored as {v.short}: {v.message}"
        st.rerun()
    tag = c2.text_input("Tag name", key="ver.tag.name", placeholder="v1.0")
    if c2.button("Tag this version", key="ver.tag"):
        try:
            versions.tag_release(ed.path, tag, rev=revs[label])
        except versions.VersionError as exc:
            st.error(str(exc))
            return
        ed.notice = f"Tagged {tag}"
        st.rerun()
