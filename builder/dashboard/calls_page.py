"""Dashboard page: every recorded call, filtered and paginated, and one call's
detail.

Filters: agent, graph version, date range, outcome, transport and transcript
text (PostgreSQL full-text search, a word match on SQLite). "Download CSV"
exports every call matching the filters, not only the page shown. Selecting a
row, or opening `?call=<id>`, shows that call (see `call_detail`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from builder import files
from builder.dashboard import call_detail
from builder.dashboard.call_list import export_csv, table_rows
from builder.dashboard.data import database, run
from builder.dashboard.export import file_name
from builder.dashboard.filters import call_filter
from runtime.db import queries

PAGE_SIZES = (10, 25, 50, 100, 200)


def graphs_dir(argv: Sequence[str] | None = None) -> Path:
    """The graphs directory: `--graphs-dir` after `--` on the streamlit command
    line, else SWITCHBOARD_GRAPHS_DIR, else `graphs/`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--graphs-dir", type=Path, default=None)
    known, _ = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    return (known.graphs_dir or files.graphs_dir()).resolve()


def _show_call(call_id: str) -> None:
    detail = run(lambda engine: queries.get_call(engine, call_id))
    if detail is None:
        st.error(f"No call {call_id!r} in the database.")
        return
    call_detail.render(detail, graphs_dir())


def _follow_selection(rows: Sequence[dict[str, Any]], chosen: Sequence[int]) -> None:
    """Keep `?call=` in step with the row the user selects (or deselects)."""
    selected = rows[chosen[0]]["id"] if chosen else None
    if selected == st.session_state.get("calls.selected"):
        return
    st.session_state["calls.selected"] = selected
    if selected:
        st.query_params["call"] = selected
    elif "call" in st.query_params:
        del st.query_params["call"]


def _list() -> None:
    with st.sidebar:
        st.subheader("Filter calls")
        try:
            filters = call_filter("calls", outcome=True, transport=True, text=True)
        except ValueError as exc:  # e.g. a date range the wrong way round
            st.error(str(exc))
            return
        size = st.selectbox("Calls per page", PAGE_SIZES, index=2, key="calls.size")
    page = run(lambda engine: queries.list_calls(engine, filters, limit=size, offset=0))
    pages = max(1, -(-page.total // size))
    top = st.columns([2, 1, 1])
    if st.session_state.get("calls.page", 1) > pages:  # fewer pages since the filter changed
        st.session_state["calls.page"] = 1
    number = top[1].number_input("Page", 1, pages, 1, key="calls.page") if pages > 1 else 1
    if number > 1:
        offset = (int(number) - 1) * size
        page = run(lambda engine: queries.list_calls(engine, filters, limit=size, offset=offset))
    first = page.offset + 1 if page.items else 0
    top[0].markdown(
        f"**{page.total} call{'s' if page.total != 1 else ''}** match · "
        f"showing {first}–{page.offset + len(page.items)} · page {number} of {pages}"
    )
    db = database()
    top[2].download_button(
        "Download CSV",
        data=lambda: export_csv(db, filters),
        file_name=file_name("calls", filters.agent, filters.outcome),
        mime="text/csv",
        key="calls.csv",
        disabled=page.total == 0,
    )
    if not page.items:
        st.info("No calls match these filters." if page.total == 0 else "No calls on this page.")
        return
    rows = table_rows(page.items)
    picked = st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="calls.table",
        column_config={"id": st.column_config.TextColumn("call id")},
    )
    chosen = getattr(getattr(picked, "selection", None), "rows", None) or []
    _follow_selection(rows, chosen)
    st.caption("Select a row to open the call below.")


def main() -> None:
    """Draw the list and, when one is chosen, the call."""
    st.title("Calls")
    try:
        _list()
        wanted = st.query_params.get("call")
        if wanted:
            st.divider()
            _show_call(wanted)
    except (OSError, SQLAlchemyError, TimeoutError) as exc:  # the database is unreachable
        st.error(f"Cannot read calls from the database: {type(exc).__name__}: {exc}")


main()
